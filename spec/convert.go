package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/go-units"
)

// convertProjects maps compose-go's projects (one per loader unit) onto berth's model,
// reading the secret, config and env files they refer to through opts.FS. Every unit
// carries the same top-level sections, except that each adds the default network only
// when its services use it. Problems found on the way go to ps.
// byKey yields m's entries in the order of their keys. A loader unit is mostly one
// service: a map of one entry is not sorted, which saves an allocation per service.
func byKey[V any](m map[string]V) iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		if len(m) == 1 {
			for k, v := range m {
				yield(k, v)
			}
			return
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if !yield(k, m[k]) {
				return
			}
		}
	}
}

func convertProjects(projects []*types.Project, opts LoadOptions, env map[string]string, ps *problems) *Stack {
	st := &Stack{
		Name:     opts.Stack,
		Services: map[string]*Service{},
		Networks: map[string]*Network{},
		Volumes:  map[string]*Volume{},
		Secrets:  map[string]*Secret{},
		Configs:  map[string]*Config{},
	}
	for _, p := range projects {
		// Sorted, here and below, so that problems come out in the same order every time.
		for name, svc := range byKey(p.Services) {
			st.Services[name] = convertService(&svc, opts, env, ps)
		}
		for name, n := range p.Networks {
			if _, done := st.Networks[name]; !done {
				st.Networks[name] = convertNetwork(opts.Stack, name, n)
			}
		}
	}
	p := projects[0]
	for name, v := range p.Volumes {
		st.Volumes[name] = &Volume{
			Name:       objectName(opts.Stack, name, v.Name, bool(v.External)),
			Driver:     v.Driver,
			DriverOpts: nonEmpty(v.DriverOpts),
			External:   bool(v.External),
			Labels:     nonEmpty(v.Labels),
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Secrets)) {
		s := p.Secrets[name]
		st.Secrets[name] = &Secret{FileObject: convertFileObject(opts, env, ps, "secrets", name, types.FileObjectConfig(s))}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Configs)) {
		c := p.Configs[name]
		cfg := &Config{FileObject: convertFileObject(opts, env, ps, "configs", name, types.FileObjectConfig(c))}
		if !cfg.External {
			sum := sha256.Sum256(cfg.Data)
			cfg.Digest = "sha256:" + hex.EncodeToString(sum[:])
		}
		st.Configs[name] = cfg
	}
	for _, svc := range st.Services {
		for i, m := range svc.Mounts {
			if v := st.Volumes[m.Source]; m.Type == MountVolume && v != nil && len(v.DriverOpts) > 0 {
				svc.Mounts[i].DriverOpts = maps.Clone(v.DriverOpts)
			}
		}
	}
	return st
}

func convertNetwork(stack, key string, n types.NetworkConfig) *Network {
	net := &Network{
		Name:       objectName(stack, key, n.Name, bool(n.External)),
		Driver:     n.Driver,
		DriverOpts: nonEmpty(n.DriverOpts),
		Internal:   n.Internal,
		Attachable: n.Attachable,
		External:   bool(n.External),
		Subnets:    subnets(n.Ipam),
		Labels:     nonEmpty(n.Labels),
	}
	if net.Driver == "" && !net.External {
		net.Driver = "overlay" // as docker stack deploy
	}
	return net
}

// objectName is the cluster-wide name of a network, volume, secret or config: the `name:`
// written in the file, else the key itself for external objects, else `<stack>_<key>`.
// compose-go fills in `<project>_<key>` during normalization, which is the same thing.
func objectName(stack, key, written string, external bool) string {
	switch {
	case written != "":
		return written
	case external:
		return key
	default:
		return FullName(stack, key)
	}
}

// convertFileObject converts a secret or config (section says which) and reads its bytes.
func convertFileObject(opts LoadOptions, env map[string]string, ps *problems, section, key string, o types.FileObjectConfig) FileObject {
	return FileObject{
		Name:        objectName(opts.Stack, key, o.Name, bool(o.External)),
		File:        o.File,
		Environment: o.Environment,
		External:    bool(o.External),
		Labels:      nonEmpty(o.Labels),
		Data:        objectData(ps, section+"."+key, o, opts, env),
	}
}

// objectData reads the bytes of a secret or config from its file, environment variable or
// inline content. Errors never quote the data.
func objectData(ps *problems, field string, o types.FileObjectConfig, opts LoadOptions, env map[string]string) []byte {
	switch {
	case bool(o.External):
		return nil
	case o.File != "":
		data, err := readRef(opts, o.File)
		if err != nil {
			ps.errorf("", field+".file", "fix the path; relative paths start at the stack's folder", "cannot read %s: %v", o.File, err)
			return data
		}
		return openObjectFile(ps, field, o.File, data, opts)
	case o.Environment != "":
		v, ok := env[o.Environment]
		if !ok {
			ps.errorf("", field+".environment", "set "+o.Environment+" in the environment berth runs with", "variable %s is not set", o.Environment)
		}
		return []byte(v)
	case o.Content != "":
		return []byte(o.Content)
	default:
		ps.errorf("", field, "give it a `file`, `environment` or `content`, or mark it `external: true`", "it has no source")
		return nil
	}
}

// openObjectFile hands a secret or config file's bytes to opts.OpenFile.
func openObjectFile(ps *problems, field, file string, data []byte, opts LoadOptions) []byte {
	if opts.OpenFile == nil {
		return data
	}
	out, err := opts.OpenFile(fsPath(opts.WorkingDir, file), data)
	if err != nil {
		var fix interface{ Fix() string }
		hint := ""
		if errors.As(err, &fix) {
			hint = fix.Fix()
		}
		ps.errorf("", field+".file", hint, "cannot use %s: %v", file, err)
	}
	return out
}

func convertService(svc *types.ServiceConfig, opts LoadOptions, env map[string]string, ps *problems) *Service {
	s := &Service{
		Name:        svc.Name,
		Image:       svc.Image,
		Command:     []string(svc.Command),
		Entrypoint:  []string(svc.Entrypoint),
		Environment: resolveServiceEnv(svc, opts, env, ps),
		Labels:      nonEmpty(svc.Labels),
		User:        svc.User,
		WorkingDir:  svc.WorkingDir,
		Hostname:    svc.Hostname,
		DNS:         slices.Clone([]string(svc.DNS)),
		DNSSearch:   slices.Clone([]string(svc.DNSSearch)),
		DNSOptions:  slices.Clone(svc.DNSOpts),
		StopSignal:  svc.StopSignal,
		Init:        svc.Init,
		ReadOnly:    svc.ReadOnly,
		Tmpfs:       slices.Clone([]string(svc.Tmpfs)),
		CapAdd:      slices.Clone(svc.CapAdd),
		CapDrop:     slices.Clone(svc.CapDrop),
		Privileged:  svc.Privileged,
		Sysctls:     nonEmpty(svc.Sysctls),
		Deploy:      convertDeploy(svc.Deploy),
	}
	applySecurityOpt(ps, s, opts, svc.SecurityOpt)
	s.Logging = convertLogging(ps, svc.Name, svc.Logging)
	if svc.StopGracePeriod != nil {
		s.StopGracePeriod = ptr(Duration(*svc.StopGracePeriod))
	}
	if hc := svc.HealthCheck; hc != nil {
		s.Healthcheck = &Healthcheck{
			Test:          []string(hc.Test),
			Interval:      durationPtr(hc.Interval),
			Timeout:       durationPtr(hc.Timeout),
			StartPeriod:   durationPtr(hc.StartPeriod),
			StartInterval: durationPtr(hc.StartInterval),
			Retries:       hc.Retries,
			Disable:       hc.Disable,
		}
	}
	for _, d := range svc.Devices {
		s.Devices = append(s.Devices, Device{Source: d.Source, Target: d.Target, Permissions: d.Permissions})
	}
	for name, u := range svc.Ulimits {
		if s.Ulimits == nil {
			s.Ulimits = map[string]Ulimit{}
		}
		if u.Single != 0 {
			s.Ulimits[name] = Ulimit{Soft: int64(u.Single), Hard: int64(u.Single)}
		} else {
			s.Ulimits[name] = Ulimit{Soft: int64(u.Soft), Hard: int64(u.Hard)}
		}
	}
	for name, n := range svc.Networks {
		sn := ServiceNetwork{Name: name}
		if n != nil {
			sn.Aliases = slices.Clone(n.Aliases)
			sn.IPv4Address = n.Ipv4Address
		}
		s.Networks = append(s.Networks, sn)
	}
	for i, p := range svc.Ports {
		s.Ports = append(s.Ports, convertPort(ps, svc.Name, i, p))
	}
	for i, v := range svc.Volumes {
		if m, ok := convertMount(ps, opts, svc.Name, i, v); ok {
			s.Mounts = append(s.Mounts, m)
		}
	}
	for _, r := range svc.Secrets {
		s.Secrets = append(s.Secrets, fileReference(types.FileReferenceConfig(r), "/run/secrets/"))
	}
	for _, r := range svc.Configs {
		s.Configs = append(s.Configs, fileReference(types.FileReferenceConfig(r), "/"))
	}
	return s
}

func convertPort(ps *problems, service string, i int, p types.ServicePortConfig) Port {
	port := Port{Target: p.Target, Protocol: p.Protocol, Mode: p.Mode, HostIP: p.HostIP}
	if port.Protocol == "" {
		port.Protocol = "tcp"
	}
	if port.Mode == "" {
		port.Mode = PortModeIngress
	}
	if p.Published != "" {
		n, err := strconv.ParseUint(p.Published, 10, 16)
		if err != nil {
			ps.errorf(service, fmt.Sprintf("ports[%d].published", i), "publish one port per entry, e.g. \"8080:80\"", "%q is not a single port number", p.Published)
		}
		port.Published = uint32(n)
	}
	return port
}

func convertMount(ps *problems, opts LoadOptions, service string, i int, v types.ServiceVolumeConfig) (Mount, bool) {
	m := Mount{Type: v.Type, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
	switch v.Type {
	case MountVolume:
		if v.Volume != nil {
			m.NoCopy, m.Subpath = v.Volume.NoCopy, v.Volume.Subpath
		}
	case MountBind:
		if v.Bind != nil {
			m.Propagation = v.Bind.Propagation
		}
		m.Source = bindSource(opts, v.Source)
	case MountTmpfs:
		if v.Tmpfs != nil {
			m.TmpfsSize, m.TmpfsMode = int64(v.Tmpfs.Size), v.Tmpfs.Mode
		}
	default:
		ps.errorf(service, fmt.Sprintf("volumes[%d].type", i), "use volume, bind or tmpfs", "mount type %q is not supported by berth", v.Type)
		return m, false
	}
	return m, true
}

// logRotationDrivers are the logging drivers whose rotation berth's log driver does.
var logRotationDrivers = []string{"", "json-file", "local"}

// convertLogging maps logging: onto the rotation of berth's log driver; what it cannot
// honour is warned about, naming the driver or option, and left out.
func convertLogging(ps *problems, service string, l *types.LoggingConfig) *Logging {
	if l == nil {
		return nil
	}
	if !slices.Contains(logRotationDrivers, l.Driver) {
		ps.warnf(service, "logging.driver", "remove it, or use json-file or local to set max-size and max-file; read the logs with berth service logs",
			"berth has no logging driver %s: the tasks' output goes to berth's own log files", abbrev(l.Driver))
		return nil
	}
	out := &Logging{}
	for k, v := range byKey(l.Options) {
		field := "logging.options." + k
		switch k {
		case "max-size":
			n, err := units.FromHumanSize(v)
			if err != nil || n <= 0 {
				ps.errorf(service, field, "write a size such as 10m or 1g", "%s is not a size", abbrev(v))
				continue
			}
			out.MaxSize = n
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				ps.errorf(service, field, "write a whole number of files, 1 or more", "%s is not a number of files", abbrev(v))
				continue
			}
			out.MaxFiles = n
		default:
			ps.warnf(service, field, "remove it: berth honours max-size and max-file", "berth does not act on the logging option %s: it is ignored", k)
		}
	}
	if *out == (Logging{}) {
		return nil
	}
	return out
}

// bindSource resolves a relative bind source as the Docker CLI does for `docker stack
// deploy -c`: ~ is the home folder, anything else relative is taken against the
// Compose file's folder. Without those folders the source stays as written, for
// validation to refuse, and so does another user's home (~ann/x), which the Docker CLI
// would take for a folder of one's own ($HOME/ann/x).
func bindSource(opts LoadOptions, src string) string {
	if path.IsAbs(src) {
		return src
	}
	if rest, ok := strings.CutPrefix(src, "~"); ok {
		if opts.HomeDir == "" || rest != "" && rest[0] != '/' {
			return src
		}
		return path.Join(opts.HomeDir, rest)
	}
	if opts.BindDir == "" {
		return src
	}
	return path.Join(opts.BindDir, src)
}

func fileReference(r types.FileReferenceConfig, dir string) FileReference {
	ref := FileReference{Source: r.Source, Target: r.Target, UID: r.UID, GID: r.GID}
	if ref.Target == "" {
		ref.Target = dir + r.Source
	} else if !path.IsAbs(ref.Target) && dir == "/run/secrets/" {
		ref.Target = dir + ref.Target
	}
	if r.Mode != nil && *r.Mode >= 0 && *r.Mode <= math.MaxUint32 {
		ref.Mode = ptr(FileMode(*r.Mode))
	}
	return ref
}

func convertDeploy(d *types.DeployConfig) Deploy {
	out := Deploy{Mode: ModeReplicated, EndpointMode: "vip"}
	if d == nil {
		out.Replicas = ptr(uint64(1))
		return out
	}
	if d.Mode != "" {
		out.Mode = d.Mode
	}
	if d.EndpointMode != "" {
		out.EndpointMode = d.EndpointMode
	}
	if d.Replicas != nil && *d.Replicas >= 0 {
		out.Replicas = ptr(uint64(*d.Replicas))
	}
	if out.Replicas == nil && (out.Mode == ModeReplicated || out.Mode == ModeReplicatedJob) {
		out.Replicas = ptr(uint64(1))
	}
	out.Labels = nonEmpty(d.Labels)
	out.Placement = Placement{Constraints: slices.Clone(d.Placement.Constraints), MaxReplicasPerNode: d.Placement.MaxReplicas}
	for _, p := range d.Placement.Preferences {
		out.Placement.Preferences = append(out.Placement.Preferences, Preference{Spread: p.Spread})
	}
	out.Resources = Resources{Limits: convertResource(d.Resources.Limits), Reservations: convertResource(d.Resources.Reservations)}
	if rp := d.RestartPolicy; rp != nil {
		out.RestartPolicy = &RestartPolicy{
			Condition:   rp.Condition,
			Delay:       durationPtr(rp.Delay),
			MaxAttempts: rp.MaxAttempts,
			Window:      durationPtr(rp.Window),
		}
		if out.RestartPolicy.Condition == "" {
			out.RestartPolicy.Condition = RestartAny
		}
	}
	out.UpdateConfig = convertUpdate(d.UpdateConfig)
	out.RollbackConfig = convertUpdate(d.RollbackConfig)
	return out
}

func convertResource(r *types.Resource) *Resource {
	if r == nil || (r.NanoCPUs == 0 && r.MemoryBytes == 0 && r.Pids == 0) {
		return nil
	}
	return &Resource{
		// float32 carries about 7 digits: round to a millicore so 0.1 stays 0.1.
		CPUs:        NanoCPUs(math.Round(float64(r.NanoCPUs)*1e3) * 1e6),
		MemoryBytes: int64(r.MemoryBytes),
		Pids:        r.Pids,
	}
}

func convertUpdate(u *types.UpdateConfig) *UpdateConfig {
	if u == nil {
		return nil
	}
	return &UpdateConfig{
		Parallelism:   u.Parallelism,
		Delay:         Duration(u.Delay),
		FailureAction: u.FailureAction,
		Monitor:       Duration(u.Monitor),
		// float32 from the loader: keep the digits the user wrote.
		MaxFailureRatio: math.Round(float64(u.MaxFailureRatio)*1e6) / 1e6,
		Order:           u.Order,
	}
}

func subnets(ipam types.IPAMConfig) []string {
	var out []string
	for _, c := range ipam.Config {
		if c != nil && c.Subnet != "" {
			out = append(out, c.Subnet)
		}
	}
	return out
}

func durationPtr(d *types.Duration) *Duration {
	if d == nil {
		return nil
	}
	return ptr(Duration(*d))
}

func ptr[T any](v T) *T { return &v }

// nonEmpty normalizes empty maps to nil so "labels: {}" and no labels encode the same.
func nonEmpty[M ~map[string]string](m M) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(map[string]string(m))
}
