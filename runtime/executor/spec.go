package executor

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berthd/berth/spec"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cap"
	"github.com/containerd/containerd/v2/pkg/oci"
	mobyseccomp "github.com/moby/profiles/seccomp"
	"github.com/moby/sys/signal"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// initPath is where an init binary is mounted in the container, as Docker does.
const initPath = "/sbin/docker-init"

// cpuPeriod is the CFS period that CPU limits are expressed in (100ms, as Docker).
const cpuPeriod = 100000

// DefaultStopGracePeriod is how long Stop waits after the stop signal before SIGKILL.
const DefaultStopGracePeriod = 10 * time.Second

// specOpts turns a service spec into OCI spec options. mounts are the already prepared
// mounts (volumes, binds, tmpfs and the agent's); hostname is final.
func (e *Executor) specOpts(c Container, img client.Image, hostname string, mounts []specs.Mount) ([]oci.SpecOpts, error) {
	s := c.Spec
	var opts []oci.SpecOpts

	// Compose semantics: an entrypoint replaces the image's Entrypoint and drops its Cmd;
	// a command alone replaces the image's Cmd.
	switch {
	case len(s.Entrypoint) > 0:
		args := append(slices.Clone(s.Entrypoint), s.Command...)
		opts = append(opts, oci.WithImageConfig(img), oci.WithProcessArgs(args...))
	case len(s.Command) > 0:
		opts = append(opts, oci.WithImageConfigArgs(img, s.Command))
	default:
		opts = append(opts, oci.WithImageConfig(img))
	}

	env := []string{"HOSTNAME=" + hostname}
	for _, k := range sortedKeys(s.Environment) {
		if k == "" || strings.Contains(k, "=") {
			return nil, fmt.Errorf("%w: environment: bad variable name %q", ErrInvalid, k)
		}
		env = append(env, k+"="+s.Environment[k])
	}
	opts = append(opts, oci.WithEnv(env))

	if s.WorkingDir != "" {
		if !filepath.IsAbs(s.WorkingDir) {
			return nil, fmt.Errorf("%w: working_dir %q must be an absolute path", ErrInvalid, s.WorkingDir)
		}
		opts = append(opts, oci.WithProcessCwd(s.WorkingDir))
	}
	if s.User != "" {
		user, _, _ := strings.Cut(s.User, ":")
		// The user is looked up in the image's /etc/passwd: a missing one is the spec's
		// fault.
		opts = append(opts, withField("user "+strconv.Quote(s.User), oci.WithUser(s.User)), oci.WithAdditionalGIDs(user))
	}
	opts = append(opts, oci.WithHostname(hostname))

	if c.NetNSPath != "" {
		if !filepath.IsAbs(c.NetNSPath) {
			return nil, fmt.Errorf("%w: network namespace path %q must be absolute", ErrInvalid, c.NetNSPath)
		}
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: c.NetNSPath}))
	}

	// As Docker: the task sees its own cgroups at /sys/fs/cgroup, so that programs that
	// size themselves by their limits (the JVM, GOMAXPROCS) find them. Before the
	// service's mounts, which may replace it.
	opts = append(opts, oci.WithMounts([]specs.Mount{CgroupMount(s.Privileged || s.WritableCgroups)}))
	if len(mounts) > 0 {
		dests := make([]string, 0, len(mounts))
		for _, m := range mounts {
			dests = append(dests, m.Destination)
		}
		// A service mount on /run or /dev/shm replaces the default one there.
		opts = append(opts, oci.WithoutMounts(dests...), oci.WithMounts(mounts))
	}
	if s.ReadOnly {
		opts = append(opts, oci.WithRootFSReadonly())
	}

	if s.Privileged {
		opts = append(opts, oci.WithPrivileged, oci.WithHostDevices, oci.WithAllDevicesAllowed)
	} else {
		capOpt, err := capabilities(s.CapAdd, s.CapDrop)
		if err != nil {
			return nil, err
		}
		opts = append(opts, capOpt, seccompProfile(s.Seccomp))
	}
	// Docker's default, where containerd's is the opposite: setuid and file-capability
	// binaries work unless the service asks for no-new-privileges.
	if s.NoNewPrivileges {
		opts = append(opts, oci.WithNoNewPrivileges)
	} else {
		opts = append(opts, oci.WithNewPrivileges)
	}
	if s.SystemPathsUnconfined {
		opts = append(opts, oci.WithMaskedPaths(nil), oci.WithReadonlyPaths(nil))
	}

	devOpts, err := devices(s.Devices)
	if err != nil {
		return nil, err
	}
	opts = append(opts, devOpts...)

	sysOpt, err := sysctls(s.Sysctls)
	if err != nil {
		return nil, err
	}
	opts = append(opts, sysOpt)

	ulimitOpts, err := ulimits(s.Ulimits)
	if err != nil {
		return nil, err
	}
	opts = append(opts, ulimitOpts...)

	resOpts, err := resources(s.Deploy.Resources)
	if err != nil {
		return nil, err
	}
	opts = append(opts, resOpts...)

	if s.Init != nil && *s.Init {
		path, err := e.findInit()
		if err != nil {
			return nil, err
		}
		opts = append(opts,
			oci.WithMounts([]specs.Mount{{Type: "bind", Source: path, Destination: initPath, Options: []string{"rbind", "ro"}}}),
			withInit)
	}
	return append(opts, requireArgs), nil
}

// withInit runs the process under the init binary, which reaps zombies and forwards
// signals to it.
func withInit(ctx context.Context, cl oci.Client, c *containers.Container, s *oci.Spec) error {
	if err := requireArgs(ctx, cl, c, s); err != nil {
		return err
	}
	s.Process.Args = append([]string{initPath, "--"}, s.Process.Args...)
	return nil
}

func withField(field string, o oci.SpecOpts) oci.SpecOpts {
	return func(ctx context.Context, cl oci.Client, c *containers.Container, s *oci.Spec) error {
		if err := o(ctx, cl, c, s); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalid, field, err)
		}
		return nil
	}
}

func requireArgs(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	if s.Process == nil || len(s.Process.Args) == 0 {
		return fmt.Errorf("%w: command: the image has neither entrypoint nor cmd and the service sets none", ErrInvalid)
	}
	return nil
}

// findInit returns the init binary: the configured one, else tini-static or docker-init on
// PATH. It must be statically linked, since it runs inside images that may have no C
// library.
func (e *Executor) findInit() (string, error) {
	e.initOnce.Do(func() {
		candidates := []string{e.initBinary}
		if e.initBinary == "" {
			candidates = nil
			for _, name := range []string{"tini-static", "docker-init"} {
				if p, err := exec.LookPath(name); err == nil {
					candidates = append(candidates, p)
				}
			}
		}
		var problems []string
		for _, p := range candidates {
			if err := checkStatic(p); err != nil {
				problems = append(problems, err.Error())
				continue
			}
			e.initPath = p
			return
		}
		if len(problems) == 0 {
			problems = append(problems, "neither tini-static nor docker-init is on PATH (Debian: apt-get install tini)")
		}
		e.initErr = fmt.Errorf("%w: init: %w: %s", ErrInvalid, ErrInitUnavailable, strings.Join(problems, "; "))
	})
	return e.initPath, e.initErr
}

func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("init binary %s: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("init binary %s is dynamically linked", path)
		}
	}
	return nil
}

// capabilities applies cap_add and cap_drop as Docker does: ALL in cap_add grants every
// capability but the dropped ones; ALL in cap_drop keeps only the added ones; otherwise
// the defaults less the dropped plus the added.
func capabilities(add, drop []string) (oci.SpecOpts, error) {
	known := cap.Known()
	norm := func(field string, list []string) ([]string, bool, error) {
		var out []string
		all := false
		for i, c := range list {
			n := strings.ToUpper(strings.TrimSpace(c))
			if n == "ALL" {
				all = true
				continue
			}
			if !strings.HasPrefix(n, "CAP_") {
				n = "CAP_" + n
			}
			if !slices.Contains(known, n) {
				return nil, false, fmt.Errorf("%w: %s[%d] %q: unknown capability", ErrInvalid, field, i, c)
			}
			out = append(out, n)
		}
		return out, all, nil
	}
	adds, addAll, err := norm("cap_add", add)
	if err != nil {
		return nil, err
	}
	drops, dropAll, err := norm("cap_drop", drop)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, cl oci.Client, c *containers.Container, s *oci.Spec) error {
		var base []string
		if s.Process != nil && s.Process.Capabilities != nil {
			base = s.Process.Capabilities.Bounding
		}
		var caps []string
		switch {
		case addAll:
			for _, k := range known {
				if !slices.Contains(drops, k) {
					caps = append(caps, k)
				}
			}
		case dropAll:
			caps = adds
		default:
			for _, k := range base {
				if !slices.Contains(drops, k) {
					caps = append(caps, k)
				}
			}
			for _, k := range adds {
				if !slices.Contains(caps, k) {
					caps = append(caps, k)
				}
			}
		}
		return oci.WithCapabilities(caps)(ctx, cl, c, s)
	}, nil
}

func devices(devs []spec.Device) ([]oci.SpecOpts, error) {
	var opts []oci.SpecOpts
	for i, d := range devs {
		if !filepath.IsAbs(d.Source) {
			return nil, fmt.Errorf("%w: devices[%d].source %q must be an absolute path", ErrInvalid, i, d.Source)
		}
		target := d.Target
		if target == "" {
			target = d.Source
		}
		if !filepath.IsAbs(target) {
			return nil, fmt.Errorf("%w: devices[%d].target %q must be an absolute path", ErrInvalid, i, target)
		}
		perms := d.Permissions
		if perms == "" {
			perms = "rwm"
		}
		if strings.Trim(perms, "rwm") != "" || len(perms) > 3 {
			return nil, fmt.Errorf("%w: devices[%d].permissions %q: want a combination of r, w and m", ErrInvalid, i, d.Permissions)
		}
		dev, err := oci.DeviceFromPath(d.Source)
		if err != nil {
			if errors.Is(err, oci.ErrNotADevice) {
				return nil, fmt.Errorf("%w: devices[%d].source %q is not a device node", ErrInvalid, i, d.Source)
			}
			return nil, fmt.Errorf("%w: devices[%d].source %q: %v", ErrInvalid, i, d.Source, err)
		}
		dev.Path = target
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			if s.Linux == nil {
				s.Linux = &specs.Linux{}
			}
			if s.Linux.Resources == nil {
				s.Linux.Resources = &specs.LinuxResources{}
			}
			s.Linux.Devices = append(s.Linux.Devices, *dev)
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{
				Allow: true, Type: dev.Type, Major: &dev.Major, Minor: &dev.Minor, Access: perms,
			})
			return nil
		})
	}
	return opts, nil
}

// ipcSysctls are the kernel.* sysctls that the IPC namespace isolates.
var ipcSysctls = []string{
	"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
}

// sysctls accepts only namespaced sysctls, as Docker does: a host-wide one would be
// refused by runc only when the task starts, far from the spec that asked for it.
func sysctls(m map[string]string) (oci.SpecOpts, error) {
	for _, k := range sortedKeys(m) {
		ok := slices.Contains(ipcSysctls, k) || strings.HasPrefix(k, "fs.mqueue.") ||
			strings.HasPrefix(k, "net.") || k == "kernel.domainname"
		if !ok {
			return nil, fmt.Errorf("%w: sysctls: %q is not namespaced and cannot be set for one container", ErrInvalid, k)
		}
	}
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if len(m) == 0 {
			return nil
		}
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Sysctl == nil {
			s.Linux.Sysctl = map[string]string{}
		}
		for k, v := range m {
			s.Linux.Sysctl[k] = v
		}
		return nil
	}, nil
}

var rlimitNames = map[string]string{
	"as": "RLIMIT_AS", "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA",
	"fsize": "RLIMIT_FSIZE", "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK",
	"msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE",
	"nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
	"rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
}

func ulimits(m map[string]spec.Ulimit) ([]oci.SpecOpts, error) {
	var opts []oci.SpecOpts
	limit := func(name string, v int64) (uint64, error) {
		switch {
		case v == -1:
			return ^uint64(0), nil // unlimited
		case v < 0:
			return 0, fmt.Errorf("%w: ulimits.%s: %d is negative", ErrInvalid, name, v)
		}
		return uint64(v), nil
	}
	for _, name := range sortedKeys(m) {
		typ, ok := rlimitNames[strings.ToLower(name)]
		if !ok {
			return nil, fmt.Errorf("%w: ulimits: unknown limit %q", ErrInvalid, name)
		}
		soft, err := limit(name, m[name].Soft)
		if err != nil {
			return nil, err
		}
		hard, err := limit(name, m[name].Hard)
		if err != nil {
			return nil, err
		}
		if soft > hard {
			return nil, fmt.Errorf("%w: ulimits.%s: soft limit %d is above the hard limit %d", ErrInvalid, name, m[name].Soft, m[name].Hard)
		}
		opts = append(opts, oci.WithRlimit(&specs.POSIXRlimit{Type: typ, Soft: soft, Hard: hard}))
	}
	return opts, nil
}

func resources(r spec.Resources) ([]oci.SpecOpts, error) {
	var opts []oci.SpecOpts
	if l := r.Limits; l != nil {
		if l.CPUs < 0 || l.MemoryBytes < 0 || l.Pids < 0 {
			return nil, fmt.Errorf("%w: deploy.resources.limits: negative value", ErrInvalid)
		}
		if l.CPUs > 0 {
			quota := int64(l.CPUs) * cpuPeriod / 1e9
			if quota < 1000 {
				return nil, fmt.Errorf("%w: deploy.resources.limits.cpus %s: below the minimum of 0.01", ErrInvalid, l.CPUs)
			}
			opts = append(opts, oci.WithCPUCFS(quota, cpuPeriod))
		}
		if l.MemoryBytes > 0 {
			if l.MemoryBytes < 6<<20 {
				return nil, fmt.Errorf("%w: deploy.resources.limits.memory %d: below the minimum of 6 MiB", ErrInvalid, l.MemoryBytes)
			}
			opts = append(opts, oci.WithMemoryLimit(uint64(l.MemoryBytes)))
		}
		if l.Pids > 0 {
			opts = append(opts, oci.WithPidsLimit(l.Pids))
		}
	}
	// A memory reservation is also a soft limit, as in Swarm: the kernel reclaims from
	// the task above it first when the node runs short.
	if rv := r.Reservations; rv != nil && rv.MemoryBytes > 0 {
		res := rv.MemoryBytes
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			if s.Linux == nil {
				s.Linux = &specs.Linux{}
			}
			if s.Linux.Resources == nil {
				s.Linux.Resources = &specs.LinuxResources{}
			}
			if s.Linux.Resources.Memory == nil {
				s.Linux.Resources.Memory = &specs.LinuxMemory{}
			}
			s.Linux.Resources.Memory.Reservation = &res
			return nil
		})
	}
	return opts, nil
}

// stopSettings validates the stop signal and grace period and returns them as the
// container labels Stop reads, so that a restarted agent stops a task as its spec said.
func stopSettings(s *spec.Service) (map[string]string, error) {
	labels := map[string]string{}
	if s.StopSignal != "" {
		if _, err := signal.ParseSignal(s.StopSignal); err != nil {
			return nil, fmt.Errorf("%w: stop_signal %q: %v", ErrInvalid, s.StopSignal, err)
		}
		labels[client.StopSignalLabel] = s.StopSignal
	}
	grace := DefaultStopGracePeriod
	if s.StopGracePeriod != nil {
		grace = time.Duration(*s.StopGracePeriod)
		if grace < 0 {
			return nil, fmt.Errorf("%w: stop_grace_period %s is negative", ErrInvalid, grace)
		}
	}
	labels[labelStopGrace] = grace.String()
	return labels, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// seccompProfile gives the task its seccomp filter: containerd's default profile (as
// Docker's), none, or the service's own profile. The own profile is resolved here, after
// the capabilities, because its rules can depend on them and on the node's architecture
// and kernel.
func seccompProfile(sc *spec.Seccomp) oci.SpecOpts {
	switch {
	case sc == nil:
		return seccomp.WithDefaultProfile()
	case sc.Unconfined:
		return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			if s.Linux != nil {
				s.Linux.Seccomp = nil
			}
			return nil
		}
	}
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		profile, err := mobyseccomp.LoadProfile(sc.Profile, s)
		if err != nil {
			return fmt.Errorf("%w: security_opt seccomp=%s: %v", ErrInvalid, sc.File, err)
		}
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		s.Linux.Seccomp = profile
		return nil
	}
}

// CgroupMount is the cgroup file system at /sys/fs/cgroup, where runc shows the task
// its own part of each hierarchy; read-only unless writable (privileged, or
// security_opt writable-cgroups=true, for a task that manages sub-cgroups).
func CgroupMount(writable bool) specs.Mount {
	mode := "ro"
	if writable {
		mode = "rw"
	}
	return specs.Mount{
		Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup",
		Options: []string{"nosuid", "noexec", "nodev", "relatime", mode},
	}
}

// BindFile bind-mounts a file of the node (the task's hosts, resolv.conf, secrets) at
// dst in the container.
func BindFile(src, dst string, readOnly bool) specs.Mount {
	opts := []string{"rbind", "nosuid", "nodev"}
	if readOnly {
		opts = append(opts, "ro")
	}
	return specs.Mount{Type: "bind", Source: src, Destination: dst, Options: opts}
}
