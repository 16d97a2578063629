// Package svcflags turns the flags of `berth service create` and `berth service
// update`, as Docker's CLI takes them, into a spec.Service: the model a Compose
// service becomes, so that the manager holds both to the same rules. It is pure, as
// spec is: the command hands it the flags' values and which of them were given.
package svcflags

import (
	"fmt"
	"slices"
	"time"

	"github.com/berthd/berth/spec"
)

// Options are the flags `service create` and `service update` share, as typed.
type Options struct {
	// Given names the flags the user gave (by their name: "replicas",
	// "update-delay"...): an update changes only those.
	Given map[string]bool
	// LookupEnv reads the client's environment, for --env KEY without a value, as
	// Docker does; nil reads nothing.
	LookupEnv func(string) (string, bool)

	Mode            string
	Replicas        uint64
	MaxPerNode      uint64
	ReserveCPU      string
	ReserveMemory   string
	LimitCPU        string
	LimitMemory     string
	Update          UpdateFlags
	Rollback        UpdateFlags
	Restart         RestartFlags
	Health          HealthFlags
	Hostname        string
	User            string
	Workdir         string
	Entrypoint      string
	StopGracePeriod time.Duration
	Image           string
	// Args are the command's arguments (`service create IMAGE ARGS...`), ArgsLine
	// the same written as one line (`service update --args`).
	Args     []string
	ArgsLine string
}

// UpdateFlags are --update-* (or --rollback-*).
type UpdateFlags struct {
	Parallelism     uint64
	Delay           time.Duration
	FailureAction   string
	Monitor         time.Duration
	MaxFailureRatio float64
	Order           string
}

// RestartFlags are --restart-*.
type RestartFlags struct {
	Condition   string
	Delay       time.Duration
	MaxAttempts uint64
	Window      time.Duration
}

// HealthFlags are --health-* and --no-healthcheck.
type HealthFlags struct {
	Cmd         string
	Interval    time.Duration
	Timeout     time.Duration
	Retries     uint64
	StartPeriod time.Duration
	None        bool
}

// Lists are the repeatable flags: of `service create` as given (--env, --mount...),
// of `service update` the additions (--env-add, --mount-add...).
type Lists struct {
	Env         []string
	Labels      []string
	Constraints []string
	Prefs       []string
	Mounts      []string
	Publish     []string
	Networks    []string
	Secrets     []string
	Configs     []string
}

// Create returns the spec of a new service of no stack, named name, with Compose's
// defaults for what the flags leave out (one replica, a virtual IP).
func Create(name string, o *Options, add Lists) (*spec.Service, error) {
	s := &spec.Service{Name: name, Image: o.Image, Command: slices.Clone(o.Args),
		Deploy: spec.Deploy{Mode: spec.ModeReplicated, EndpointMode: "vip"}}
	if o.given("mode") {
		s.Deploy.Mode = o.Mode
	}
	if o.given("replicas") && s.Deploy.Global() {
		return nil, fmt.Errorf("--replicas applies to replicated services only, and service %s is %s", name, s.Deploy.Mode)
	}
	if !s.Deploy.Global() {
		one := uint64(1)
		s.Deploy.Replicas = &one
	}
	if err := o.apply(s); err != nil {
		return nil, err
	}
	if err := add.apply(s, o.LookupEnv); err != nil {
		return nil, err
	}
	return s, nil
}

// Removals are the --*-rm flags of `service update`, each naming entries by their
// key: a variable or label name, a constraint, a mount's target, a port's target
// (PORT[/PROTOCOL]), a network's, secret's or config's name.
type Removals = Lists

// Update returns a copy of cur changed by the flags of `service update`: the single
// ones given, then removals, then additions, as Docker orders them.
func Update(cur *spec.Service, o *Options, rm Removals, add Lists) (*spec.Service, error) {
	s := spec.Clone(cur)
	if o.given("image") {
		s.Image = o.Image
	}
	if o.given("args") {
		s.Command = splitWords(o.ArgsLine)
	}
	if o.given("replicas") {
		if s.Deploy.Global() {
			return nil, fmt.Errorf("service %s is %s: --replicas applies to replicated services only", s.Name, s.Deploy.Mode)
		}
		n := o.Replicas
		s.Deploy.Replicas = &n
	}
	if err := o.apply(s); err != nil {
		return nil, err
	}
	rm.remove(s)
	if err := add.apply(s, o.LookupEnv); err != nil {
		return nil, err
	}
	return s, nil
}

func (o *Options) given(flag string) bool { return o.Given[flag] }

// apply sets what the single-valued flags given say.
func (o *Options) apply(s *spec.Service) error {
	d := &s.Deploy
	if o.given("replicas") && !d.Global() {
		n := o.Replicas
		d.Replicas = &n
	}
	if o.given("replicas-max-per-node") {
		d.Placement.MaxReplicasPerNode = o.MaxPerNode
	}
	o.setStrings(s)
	if o.given("stop-grace-period") {
		g := spec.Duration(o.StopGracePeriod)
		s.StopGracePeriod = &g
	}
	if err := o.applyResources(d); err != nil {
		return err
	}
	d.UpdateConfig = o.Update.apply(o, "update-", d.UpdateConfig)
	d.RollbackConfig = o.Rollback.apply(o, "rollback-", d.RollbackConfig)
	o.applyRestart(d)
	return o.applyHealth(s)
}

func (o *Options) setStrings(s *spec.Service) {
	setIf(o, "hostname", &s.Hostname, o.Hostname)
	setIf(o, "user", &s.User, o.User)
	setIf(o, "workdir", &s.WorkingDir, o.Workdir)
	setIf(o, "entrypoint", &s.Entrypoint, splitWords(o.Entrypoint))
}

// setIf sets *field to v when flag was given.
func setIf[T any](o *Options, flag string, field *T, v T) {
	if o.given(flag) {
		*field = v
	}
}

func (o *Options) applyResources(d *spec.Deploy) error {
	var err error
	if d.Resources.Reservations, err = o.resource("reserve-", o.ReserveCPU, o.ReserveMemory, d.Resources.Reservations); err != nil {
		return err
	}
	d.Resources.Limits, err = o.resource("limit-", o.LimitCPU, o.LimitMemory, d.Resources.Limits)
	return err
}

// resource sets the CPUs and memory of r that the flags prefix+cpu and
// prefix+memory give; a resource left empty is nil, as the loader makes it.
func (o *Options) resource(prefix, cpu, memory string, r *spec.Resource) (*spec.Resource, error) {
	if !o.given(prefix+"cpu") && !o.given(prefix+"memory") {
		return r, nil
	}
	out := spec.Resource{}
	if r != nil {
		out = *r
	}
	if o.given(prefix + "cpu") {
		n, err := parseCPUs(prefix+"cpu", cpu)
		if err != nil {
			return nil, err
		}
		out.CPUs = n
	}
	if o.given(prefix + "memory") {
		n, err := parseBytes(prefix+"memory", memory)
		if err != nil {
			return nil, err
		}
		out.MemoryBytes = n
	}
	if out == (spec.Resource{}) {
		return nil, nil
	}
	return &out, nil
}

// apply sets the fields of u that the flags prefix+... give.
func (f UpdateFlags) apply(o *Options, prefix string, u *spec.UpdateConfig) *spec.UpdateConfig {
	given := func(name string) bool { return o.given(prefix + name) }
	if !slices.ContainsFunc([]string{"parallelism", "delay", "failure-action", "monitor", "max-failure-ratio", "order"}, given) {
		return u
	}
	out := &spec.UpdateConfig{}
	if u != nil {
		c := *u
		out = &c
	}
	setIf(o, prefix+"parallelism", &out.Parallelism, &f.Parallelism)
	setIf(o, prefix+"delay", &out.Delay, spec.Duration(f.Delay))
	setIf(o, prefix+"failure-action", &out.FailureAction, f.FailureAction)
	setIf(o, prefix+"monitor", &out.Monitor, spec.Duration(f.Monitor))
	setIf(o, prefix+"max-failure-ratio", &out.MaxFailureRatio, f.MaxFailureRatio)
	setIf(o, prefix+"order", &out.Order, f.Order)
	return out
}

func (o *Options) applyRestart(d *spec.Deploy) {
	f := o.Restart
	if !slices.ContainsFunc([]string{"restart-condition", "restart-delay", "restart-max-attempts", "restart-window"}, o.given) {
		return
	}
	rp := &spec.RestartPolicy{Condition: spec.RestartAny}
	if d.RestartPolicy != nil {
		c := *d.RestartPolicy
		rp = &c
	}
	setIf(o, "restart-condition", &rp.Condition, f.Condition)
	setIf(o, "restart-delay", &rp.Delay, durationPtr(f.Delay))
	setIf(o, "restart-max-attempts", &rp.MaxAttempts, &f.MaxAttempts)
	setIf(o, "restart-window", &rp.Window, durationPtr(f.Window))
	d.RestartPolicy = rp
}

func (o *Options) applyHealth(s *spec.Service) error {
	f := o.Health
	flags := []string{"health-cmd", "health-interval", "health-timeout", "health-retries", "health-start-period"}
	if o.given("no-healthcheck") && f.None {
		if slices.ContainsFunc(flags, o.given) {
			return fmt.Errorf("--no-healthcheck conflicts with --health-* options: give one or the other")
		}
		s.Healthcheck = &spec.Healthcheck{Test: []string{"NONE"}}
		return nil
	}
	if !slices.ContainsFunc(flags, o.given) {
		return nil
	}
	hc := &spec.Healthcheck{}
	if s.Healthcheck != nil && !s.Healthcheck.Disable && !slices.Equal(s.Healthcheck.Test, []string{"NONE"}) {
		c := *s.Healthcheck
		hc = &c
	}
	if o.given("health-cmd") {
		hc.Test = []string{"CMD-SHELL", f.Cmd}
		if f.Cmd == "" {
			hc.Test = nil
		}
	}
	setIf(o, "health-interval", &hc.Interval, durationPtr(f.Interval))
	setIf(o, "health-timeout", &hc.Timeout, durationPtr(f.Timeout))
	setIf(o, "health-retries", &hc.Retries, &f.Retries)
	setIf(o, "health-start-period", &hc.StartPeriod, durationPtr(f.StartPeriod))
	s.Healthcheck = hc
	return nil
}

func durationPtr(d time.Duration) *spec.Duration {
	v := spec.Duration(d)
	return &v
}
