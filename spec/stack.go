// Package spec turns Compose stack files into berth's validated, canonical model of a
// stack, and compares two such models. It is pure: it reads nothing but what it is handed.
package spec

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Deploy modes, as in Swarm.
const (
	ModeReplicated    = "replicated"
	ModeGlobal        = "global"
	ModeReplicatedJob = "replicated-job"
	ModeGlobalJob     = "global-job"
)

// Stack is one stack: the services, networks, volumes, secrets and configs of a set of
// merged Compose files. Maps are keyed by the short name used inside the stack.
type Stack struct {
	Name     string              `json:"name" yaml:"name"`
	Services map[string]*Service `json:"services,omitempty" yaml:"services,omitempty"`
	Networks map[string]*Network `json:"networks,omitempty" yaml:"networks,omitempty"`
	Volumes  map[string]*Volume  `json:"volumes,omitempty" yaml:"volumes,omitempty"`
	Secrets  map[string]*Secret  `json:"secrets,omitempty" yaml:"secrets,omitempty"`
	Configs  map[string]*Config  `json:"configs,omitempty" yaml:"configs,omitempty"`
}

// Service is the canonical desired state of one service. Slices whose order carries no
// meaning are sorted, so that equal specs encode to equal bytes.
type Service struct {
	Name            string            `json:"name" yaml:"name"`
	Image           string            `json:"image" yaml:"image"`
	Command         []string          `json:"command,omitempty" yaml:"command,omitempty"`
	Entrypoint      []string          `json:"entrypoint,omitempty" yaml:"entrypoint,omitempty"`
	Environment     map[string]string `json:"environment,omitempty" yaml:"environment,omitempty"`
	Labels          map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	User            string            `json:"user,omitempty" yaml:"user,omitempty"`
	WorkingDir      string            `json:"working_dir,omitempty" yaml:"working_dir,omitempty"`
	Hostname        string            `json:"hostname,omitempty" yaml:"hostname,omitempty"`
	Healthcheck     *Healthcheck      `json:"healthcheck,omitempty" yaml:"healthcheck,omitempty"`
	StopSignal      string            `json:"stop_signal,omitempty" yaml:"stop_signal,omitempty"`
	StopGracePeriod *Duration         `json:"stop_grace_period,omitempty" yaml:"stop_grace_period,omitempty"`
	Init            *bool             `json:"init,omitempty" yaml:"init,omitempty"`
	ReadOnly        bool              `json:"read_only,omitempty" yaml:"read_only,omitempty"`
	Tmpfs           []string          `json:"tmpfs,omitempty" yaml:"tmpfs,omitempty"`
	CapAdd          []string          `json:"cap_add,omitempty" yaml:"cap_add,omitempty"`
	CapDrop         []string          `json:"cap_drop,omitempty" yaml:"cap_drop,omitempty"`
	Privileged      bool              `json:"privileged,omitempty" yaml:"privileged,omitempty"`
	// Seccomp, NoNewPrivileges, SystemPathsUnconfined and WritableCgroups come from
	// security_opt. A nil Seccomp is containerd's default profile.
	Seccomp               *Seccomp          `json:"seccomp,omitempty" yaml:"seccomp,omitempty"`
	NoNewPrivileges       bool              `json:"no_new_privileges,omitempty" yaml:"no_new_privileges,omitempty"`
	SystemPathsUnconfined bool              `json:"systempaths_unconfined,omitempty" yaml:"systempaths_unconfined,omitempty"`
	WritableCgroups       bool              `json:"writable_cgroups,omitempty" yaml:"writable_cgroups,omitempty"`
	Devices               []Device          `json:"devices,omitempty" yaml:"devices,omitempty"`
	Sysctls               map[string]string `json:"sysctls,omitempty" yaml:"sysctls,omitempty"`
	Ulimits               map[string]Ulimit `json:"ulimits,omitempty" yaml:"ulimits,omitempty"`
	Networks              []ServiceNetwork  `json:"networks,omitempty" yaml:"networks,omitempty"`
	Ports                 []Port            `json:"ports,omitempty" yaml:"ports,omitempty"`
	Mounts                []Mount           `json:"mounts,omitempty" yaml:"mounts,omitempty"`
	Secrets               []FileReference   `json:"secrets,omitempty" yaml:"secrets,omitempty"`
	Configs               []FileReference   `json:"configs,omitempty" yaml:"configs,omitempty"`
	Deploy                Deploy            `json:"deploy" yaml:"deploy"`

	// DNS, DNSSearch and DNSOptions are dns, dns_search and dns_opt: the servers
	// the tasks' resolver forwards the names that are not services' to, instead of
	// the node's, and the search domains and options of the tasks' resolv.conf.
	DNS        []string `json:"dns,omitempty" yaml:"dns,omitempty"`
	DNSSearch  []string `json:"dns_search,omitempty" yaml:"dns_search,omitempty"`
	DNSOptions []string `json:"dns_opt,omitempty" yaml:"dns_opt,omitempty"`

	// Logging is the rotation of the tasks' log files that logging: asks for.
	Logging *Logging `json:"logging,omitempty" yaml:"logging,omitempty"`
}

// Logging is what berth honours of a service's logging: the max-size and max-file
// options of the json-file and local drivers, which Swarm hands to Docker's driver and
// berth to its own, which rotates the same way. Zero is berth's default.
type Logging struct {
	MaxSize  int64 `json:"max_size,omitempty" yaml:"max_size,omitempty"`
	MaxFiles int   `json:"max_files,omitempty" yaml:"max_files,omitempty"`
}

// Healthcheck runs Test inside the container; a task with one counts as running only
// when healthy.
type Healthcheck struct {
	Test          []string  `json:"test,omitempty" yaml:"test,omitempty"`
	Interval      *Duration `json:"interval,omitempty" yaml:"interval,omitempty"`
	Timeout       *Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	StartPeriod   *Duration `json:"start_period,omitempty" yaml:"start_period,omitempty"`
	StartInterval *Duration `json:"start_interval,omitempty" yaml:"start_interval,omitempty"`
	Retries       *uint64   `json:"retries,omitempty" yaml:"retries,omitempty"`
	Disable       bool      `json:"disable,omitempty" yaml:"disable,omitempty"`
}

// Device maps a host device into the container.
type Device struct {
	Source      string `json:"source" yaml:"source"`
	Target      string `json:"target,omitempty" yaml:"target,omitempty"`
	Permissions string `json:"permissions,omitempty" yaml:"permissions,omitempty"`
}

// Ulimit is a soft/hard pair; a single value sets both.
type Ulimit struct {
	Soft int64 `json:"soft" yaml:"soft"`
	Hard int64 `json:"hard" yaml:"hard"`
}

// ServiceNetwork attaches a service to a network of its stack (by short name).
type ServiceNetwork struct {
	Name        string   `json:"name" yaml:"name"`
	Aliases     []string `json:"aliases,omitempty" yaml:"aliases,omitempty"`
	IPv4Address string   `json:"ipv4_address,omitempty" yaml:"ipv4_address,omitempty"`
}

// Published-port modes: ingress is reachable on every node (routing mesh), host only where
// a task runs.
const (
	PortModeIngress = "ingress"
	PortModeHost    = "host"
)

// Port publishes a container port. Published 0 means "not published on the node".
type Port struct {
	Target    uint32 `json:"target" yaml:"target"`
	Published uint32 `json:"published,omitempty" yaml:"published,omitempty"`
	Protocol  string `json:"protocol" yaml:"protocol"`
	Mode      string `json:"mode" yaml:"mode"`
	HostIP    string `json:"host_ip,omitempty" yaml:"host_ip,omitempty"`
}

// Mount types.
const (
	MountVolume = "volume"
	MountBind   = "bind"
	MountTmpfs  = "tmpfs"
)

// Mount is a volume, bind or tmpfs mount. Source names a stack volume (short name) for
// volume mounts, a host path for binds, and is empty for tmpfs and anonymous volumes.
type Mount struct {
	Type        string `json:"type" yaml:"type"`
	Source      string `json:"source,omitempty" yaml:"source,omitempty"`
	Target      string `json:"target" yaml:"target"`
	ReadOnly    bool   `json:"read_only,omitempty" yaml:"read_only,omitempty"`
	Propagation string `json:"propagation,omitempty" yaml:"propagation,omitempty"`
	NoCopy      bool   `json:"nocopy,omitempty" yaml:"nocopy,omitempty"`
	Subpath     string `json:"subpath,omitempty" yaml:"subpath,omitempty"`
	TmpfsSize   int64  `json:"tmpfs_size,omitempty" yaml:"tmpfs_size,omitempty"`
	TmpfsMode   uint32 `json:"tmpfs_mode,omitempty" yaml:"tmpfs_mode,omitempty"`
	// DriverOpts are the driver_opts of the stack volume a volume mount names, copied
	// here when the stack is loaded: what the node mounts is part of the service, so
	// that pointing a volume at another NFS export updates the services using it, as
	// `docker stack deploy` does.
	DriverOpts map[string]string `json:"driver_opts,omitempty" yaml:"driver_opts,omitempty"`
}

// FileReference grants a service a secret or config of its stack (Source, short name),
// as a file at Target.
type FileReference struct {
	Source string    `json:"source" yaml:"source"`
	Target string    `json:"target" yaml:"target"`
	UID    string    `json:"uid,omitempty" yaml:"uid,omitempty"`
	GID    string    `json:"gid,omitempty" yaml:"gid,omitempty"`
	Mode   *FileMode `json:"mode,omitempty" yaml:"mode,omitempty"`
}

// Deploy is the Swarm deploy section.
type Deploy struct {
	Mode           string            `json:"mode" yaml:"mode"`
	Replicas       *uint64           `json:"replicas,omitempty" yaml:"replicas,omitempty"`
	Labels         map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	Placement      Placement         `json:"placement,omitzero" yaml:"placement,omitempty"`
	Resources      Resources         `json:"resources,omitzero" yaml:"resources,omitempty"`
	RestartPolicy  *RestartPolicy    `json:"restart_policy,omitempty" yaml:"restart_policy,omitempty"`
	UpdateConfig   *UpdateConfig     `json:"update_config,omitempty" yaml:"update_config,omitempty"`
	RollbackConfig *UpdateConfig     `json:"rollback_config,omitempty" yaml:"rollback_config,omitempty"`
	EndpointMode   string            `json:"endpoint_mode" yaml:"endpoint_mode"`
}

// Global reports a mode that runs one task on every eligible node (global, global-job).
func (d *Deploy) Global() bool { return d.Mode == ModeGlobal || d.Mode == ModeGlobalJob }

// VIP reports whether the service is reached at a virtual IP (endpoint_mode vip, the
// default, which an empty mode also means) rather than at its tasks' addresses (dnsrr).
func (d *Deploy) VIP() bool { return d.EndpointMode != "dnsrr" }

// PublishesIngress reports whether the service publishes a port in ingress mode (the
// default, which an empty mode also means): one the routing mesh answers on every node.
func (s *Service) PublishesIngress() bool {
	return slices.ContainsFunc(s.Ports, func(p Port) bool { return p.Published != 0 && p.Mode != PortModeHost })
}

// Job reports a mode whose tasks run to completion (replicated-job, global-job).
func (d *Deploy) Job() bool { return d.Mode == ModeReplicatedJob || d.Mode == ModeGlobalJob }

// Placement holds constraints in their canonical text (see ParseConstraint), spread
// preferences and the per-node cap (0: no cap).
type Placement struct {
	Constraints        []string     `json:"constraints,omitempty" yaml:"constraints,omitempty"`
	Preferences        []Preference `json:"preferences,omitempty" yaml:"preferences,omitempty"`
	MaxReplicasPerNode uint64       `json:"max_replicas_per_node,omitempty" yaml:"max_replicas_per_node,omitempty"`
}

// Preference spreads tasks evenly over the values of a node or engine label.
type Preference struct {
	Spread string `json:"spread" yaml:"spread"`
}

// Resources are per-task limits (enforced through cgroups) and reservations (used by the
// scheduler).
type Resources struct {
	Limits       *Resource `json:"limits,omitempty" yaml:"limits,omitempty"`
	Reservations *Resource `json:"reservations,omitempty" yaml:"reservations,omitempty"`
}

// Resource is an amount of CPU, memory and processes.
type Resource struct {
	CPUs        NanoCPUs `json:"cpus,omitempty" yaml:"cpus,omitempty"`
	MemoryBytes int64    `json:"memory,omitempty" yaml:"memory,omitempty"`
	Pids        int64    `json:"pids,omitempty" yaml:"pids,omitempty"`
}

// Restart conditions.
const (
	RestartNone      = "none"
	RestartOnFailure = "on-failure"
	RestartAny       = "any"
)

// RestartPolicy tells the orchestrator when to replace a task that exited.
type RestartPolicy struct {
	Condition   string    `json:"condition" yaml:"condition"`
	Delay       *Duration `json:"delay,omitempty" yaml:"delay,omitempty"`
	MaxAttempts *uint64   `json:"max_attempts,omitempty" yaml:"max_attempts,omitempty"`
	Window      *Duration `json:"window,omitempty" yaml:"window,omitempty"`
}

// UpdateConfig drives rolling updates and rollbacks.
type UpdateConfig struct {
	Parallelism     *uint64  `json:"parallelism,omitempty" yaml:"parallelism,omitempty"`
	Delay           Duration `json:"delay,omitempty" yaml:"delay,omitempty"`
	FailureAction   string   `json:"failure_action,omitempty" yaml:"failure_action,omitempty"`
	Monitor         Duration `json:"monitor,omitempty" yaml:"monitor,omitempty"`
	MaxFailureRatio float64  `json:"max_failure_ratio,omitempty" yaml:"max_failure_ratio,omitempty"`
	Order           string   `json:"order,omitempty" yaml:"order,omitempty"`
}

// Network is a stack network. Name is the cluster-wide name (`<stack>_<key>` unless the
// file sets `name:`).
type Network struct {
	Name       string            `json:"name" yaml:"name"`
	Driver     string            `json:"driver" yaml:"driver"`
	DriverOpts map[string]string `json:"driver_opts,omitempty" yaml:"driver_opts,omitempty"`
	Internal   bool              `json:"internal,omitempty" yaml:"internal,omitempty"`
	Attachable bool              `json:"attachable,omitempty" yaml:"attachable,omitempty"`
	External   bool              `json:"external,omitempty" yaml:"external,omitempty"`
	Subnets    []string          `json:"subnets,omitempty" yaml:"subnets,omitempty"`
	Labels     map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
}

// Volume is a named volume: node-local by default, or backed by a driver's options (for
// example NFS through driver_opts type/o/device).
type Volume struct {
	Name       string            `json:"name" yaml:"name"`
	Driver     string            `json:"driver,omitempty" yaml:"driver,omitempty"`
	DriverOpts map[string]string `json:"driver_opts,omitempty" yaml:"driver_opts,omitempty"`
	External   bool              `json:"external,omitempty" yaml:"external,omitempty"`
	Labels     map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
}

// FileObject is what secrets and configs share: content that services get as a file,
// from a file (path relative to the stack's working directory), an environment variable
// or inline content, or that already exists in the cluster (external).
type FileObject struct {
	Name        string            `json:"name" yaml:"name"`
	File        string            `json:"file,omitempty" yaml:"file,omitempty"`
	Environment string            `json:"environment,omitempty" yaml:"environment,omitempty"`
	External    bool              `json:"external,omitempty" yaml:"external,omitempty"`
	Labels      map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	Data        []byte            `json:"-" yaml:"-"`
}

// Secret is a stack secret. No encoding, diff or error ever shows its Data.
type Secret struct {
	FileObject `yaml:",inline"`
}

// Config is a stack config. Unlike a secret its content is not confidential, so its digest
// is part of the canonical form.
type Config struct {
	FileObject `yaml:",inline"`
	Digest     string `json:"digest,omitempty" yaml:"digest,omitempty"`
}

// FullName is the cluster-wide name of a stack's service, network, secret...: `<stack>_<name>`.
// What belongs to no stack (`service create`, stack "") is named as given, as in Docker.
func FullName(stack, name string) string {
	if stack == "" {
		return name
	}
	return stack + "_" + name
}

// Duration encodes as Go duration text ("1m30s") so canonical output reads as written.
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// NanoCPUs is a CPU amount in billionths of a core, exact where float32 is not, and
// encoded as a decimal number of cores ("0.5").
type NanoCPUs int64

func (c NanoCPUs) String() string { return strconv.FormatFloat(float64(c)/1e9, 'f', -1, 64) }

// MarshalJSON implements json.Marshaler.
func (c NanoCPUs) MarshalJSON() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalJSON implements json.Unmarshaler.
func (c *NanoCPUs) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("cpus: %w", err)
	}
	*c = NanoCPUs(f*1e9 + 0.5)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (c NanoCPUs) MarshalYAML() (any, error) { return float64(c) / 1e9, nil }

// FileMode is a permission mode, written in octal ("0440") as people write it.
type FileMode uint32

func (m FileMode) String() string { return fmt.Sprintf("%#o", uint32(m)) }

// MarshalJSON implements json.Marshaler.
func (m FileMode) MarshalJSON() ([]byte, error) { return json.Marshal(m.String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (m *FileMode) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		return fmt.Errorf("file mode %q: %w", s, err)
	}
	*m = FileMode(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (m FileMode) MarshalYAML() (any, error) { return m.String(), nil }
