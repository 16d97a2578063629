package spec

import (
	"fmt"
	"maps"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/docker/go-units"
)

var (
	deployModes        = []string{ModeReplicated, ModeGlobal, ModeReplicatedJob, ModeGlobalJob}
	restartConditions  = []string{RestartNone, RestartOnFailure, RestartAny}
	updateFailActions  = []string{"pause", "continue", "rollback"}
	rollbackFailAction = []string{"pause", "continue"}
	updateOrders       = []string{"stop-first", "start-first"}
	endpointModes      = []string{"vip", "dnsrr"}
	portProtocols      = []string{"tcp", "udp", "sctp"}
	portModes          = []string{PortModeIngress, PortModeHost}
	networkDrivers     = []string{"overlay", "bridge"}
	healthTestKinds    = []string{"NONE", "CMD", "CMD-SHELL"}
	mountTypes         = []string{MountVolume, MountBind, MountTmpfs}
)

// Validate checks a stack in berth's model as a manager receives it: every check
// Load makes once the files are converted, so that what a client sends is held to
// the same rules as what the CLI loads (the CLI's check is a convenience). Like
// Load, it normalizes what it checked (canonical constraint text, ignored replicas
// dropped). A failure is a *ValidationError naming every field at fault.
func Validate(st *Stack) error {
	if st == nil {
		return &ValidationError{Problems: []Problem{{Message: "no stack given"}}}
	}
	if err := CheckStackName("stack", st.Name); err != nil {
		// Every other problem would repeat the name.
		return &ValidationError{Problems: []Problem{{Field: "name", Message: err.Error()}}}
	}
	ps := &problems{stack: st.Name}
	validateStack(st, ps)
	return ps.err()
}

// validateStack checks what the Compose schema does not: names and sizes, Swarm
// semantics, berth's constraint language, and references between services and
// top-level objects. It also normalizes what it checked (canonical constraint text,
// ignored replicas dropped).
func validateStack(st *Stack, ps *problems) {
	// Services of a stack often share an image: each is checked once.
	goodImages := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(st.Services)) {
		if s := st.Services[name]; checkServiceEntry(st.Name, name, s, ps) {
			validateService(st, s, ps, goodImages)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(st.Networks)) {
		n := st.Networks[name]
		field := "networks." + name
		if !checkEntry(ps, "networks", "network", name, n == nil, dnsNames) ||
			!checkName(ps, "", field+".name", "network", n.Name, dnsNames) {
			continue
		}
		if !n.External {
			oneOf(ps, "", field+".driver", n.Driver, networkDrivers, "network driver")
		}
		for i, s := range n.Subnets {
			if _, err := netip.ParsePrefix(s); err != nil {
				ps.errorf("", entryField(field+".ipam.config", i, ".subnet"), "write a CIDR such as 10.10.0.0/24", "%s is not a subnet", abbrev(s))
			}
		}
		validateNetworkDriverOpts(ps, field+".driver_opts", n)
		checkLabels(ps, "", field+".labels", n.Labels)
	}
	for _, name := range slices.Sorted(maps.Keys(st.Volumes)) {
		v := st.Volumes[name]
		field := "volumes." + name
		if !checkEntry(ps, "volumes", "volume", name, v == nil, objectNames) ||
			!checkName(ps, "", field+".name", "volume", v.Name, objectNames) {
			continue
		}
		checkLabels(ps, "", field+".labels", v.Labels)
		// A plugin's driver_opts are the plugin's: checking them against the local
		// driver's would only add errors that the fix for this one removes.
		if d := v.Driver; d != "" && d != "local" {
			ps.errorf("", field+".driver", `use the local driver: driver_opts type: nfs, o: "addr=HOST,rw", device: ":/export" for shared storage, or a bind mount of a host path`,
				"volume %s uses the driver %s, a volume plugin, and berth has no volume plugins", name, abbrev(d))
			continue
		}
		validateVolumeDriverOpts(ps, field+".driver_opts", v.DriverOpts)
	}
	for _, name := range slices.Sorted(maps.Keys(st.Secrets)) {
		s := st.Secrets[name]
		if checkEntry(ps, "secrets", "secret", name, s == nil, objectNames) {
			checkFileObject(ps, "secrets."+name, "secret", &s.FileObject)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(st.Configs)) {
		c := st.Configs[name]
		if checkEntry(ps, "configs", "config", name, c == nil, objectNames) {
			checkFileObject(ps, "configs."+name, "config", &c.FileObject)
		}
	}
}

// checkEntry reports an entry of a top-level section (key in section) that is
// missing or whose key does not follow rule; only a good entry is checked further.
func checkEntry(ps *problems, section, what, key string, missing bool, rule nameRule) bool {
	if err := rule.check(what, key); err != nil {
		ps.errorf("", section+"["+abbrev(key)+"]", "", "%v", err)
		return false
	}
	if missing {
		ps.errorf("", section+"."+key, "", "the %s has no definition", what)
		return false
	}
	return true
}

// checkServiceEntry checks a service's key and its name in the cluster
// (`<stack>_<key>`); only a good entry is checked further.
func checkServiceEntry(stack, key string, s *Service, ps *problems) bool {
	if !checkEntry(ps, "services", "service", key, s == nil, dnsNames) {
		return false
	}
	if n := len(FullName(stack, key)); n > MaxNameLength {
		ps.errorf("", "services."+key, "shorten the stack or the service name",
			"the service's name in the cluster, %s, is %d characters long; the limit is %d (a DNS label, as in Swarm)", FullName(stack, key), n, MaxNameLength)
		return false
	}
	if s.Name != key {
		ps.errorf("", "services."+key+".name", "make it the service's key", "the name %s is not the service's key", abbrev(s.Name))
		return false
	}
	return true
}

// checkFileObject checks a secret's or config's name in the cluster and its labels.
func checkFileObject(ps *problems, field, what string, o *FileObject) {
	checkName(ps, "", field+".name", what, o.Name, objectNames)
	checkLabels(ps, "", field+".labels", o.Labels)
}

// validateHostIP checks the address a port is published on: host-mode ports listen
// there (0.0.0.0 is every IPv4 address, :: every IPv6 one); the routing mesh listens
// on all of the node's addresses.
func validateHostIP(ps *problems, svc, field string, p Port) {
	if p.Mode != PortModeHost {
		ps.warnf(svc, field, "remove it, or publish the port with mode: host", "host_ip is ignored: ingress ports listen on every address of the node")
		return
	}
	// compose-go has refused what is not an address.
	if ip, err := netip.ParseAddr(p.HostIP); err == nil && ip.IsLoopback() {
		ps.errorf(svc, field, "publish on one of the node's other addresses, or leave host_ip out", "%s is a loopback address, which a published port cannot use", p.HostIP)
	}
}

// validateNetworkDriverOpts refuses an encrypted overlay. Docker encrypts a network
// whose driver_opts has the key "encrypted", whatever its value ("" too), with
// IPsec ESP between the nodes; the kernels berth runs on here have neither ESP nor
// WireGuard, and a network deployed unencrypted when the file asks otherwise would
// expose its traffic. The seam for an encrypted driver: accept the option here
// once netstack has one, which would carry the VXLAN device's underlay traffic
// (netstack's ensureVXLAN) over the encrypted transport between the nodes.
func validateNetworkDriverOpts(ps *problems, field string, n *Network) {
	if _, ok := n.DriverOpts["encrypted"]; ok {
		ps.errorf("", field+".encrypted", "remove the encrypted option from the network's driver_opts (its traffic between nodes then crosses the underlay in the clear: keep that network private)",
			"network %s asks for an encrypted overlay, which berth cannot build: this kernel has neither IPsec ESP nor WireGuard", n.Name)
	}
}

// validateVolumeDriverOpts checks driver_opts as docker's local driver reads them: the
// node mounts device (of file system type, with options o) as the volume; size is a
// quota, which berth applies only to a tmpfs (see SizeUnenforced).
func validateVolumeDriverOpts(ps *problems, field string, opts map[string]string) {
	if len(opts) == 0 {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		if !slices.Contains(volumeDriverOpts, k) {
			ps.errorf("", field+"."+k, "driver_opts takes type, o, device and size, as docker's local driver does", "unknown volume option %q", k)
		}
	}
	validateVolumeSize(ps, field+".size", opts)
	typ, device := opts["type"], opts["device"]
	if typ == "" && device == "" && opts["o"] == "" {
		return // a plain volume on the node, perhaps with a size
	}
	if typ == "" || device == "" {
		ps.errorf("", field, `give both type and device, e.g. type: nfs, o: "addr=HOST,rw", device: ":/export", or type: none, o: bind, device: /host/path`,
			"a volume mounted from elsewhere needs type and device")
		return
	}
	if (typ == "nfs" || typ == "nfs4") && strings.HasPrefix(device, ":") && !slices.ContainsFunc(strings.Split(opts["o"], ","), func(o string) bool {
		return strings.HasPrefix(o, "addr=")
	}) {
		ps.errorf("", field+".o", "add addr=HOST (the NFS server) to o, e.g. o: \"addr=10.0.0.5,rw\"",
			"device %q names no server", device)
	}
}

// validateVolumeSize checks the size option as docker's local driver parses it, and
// warns where berth will not enforce it.
func validateVolumeSize(ps *problems, field string, opts map[string]string) {
	size, ok := opts["size"]
	if !ok {
		return
	}
	if n, err := units.RAMInBytes(size); err != nil || n <= 0 {
		ps.errorf("", field, "write a size such as 512M or 10G", "%s is not a size", abbrev(size))
		return
	}
	if SizeUnenforced(opts) {
		ps.warnf("", field, `to bound the volume, make it a tmpfs (type: tmpfs, device: tmpfs), or leave size out`,
			"berth applies size only to a tmpfs volume: on the nodes' other file systems this volume is not limited")
	}
}

// volumeDriverOpts are the driver_opts docker's local driver takes.
var volumeDriverOpts = []string{"device", "o", "size", "type"}

// SizeUnenforced tells whether a volume's driver_opts ask for a size that berth does
// not apply: docker's local driver sets it as a project quota of the volume's folder
// (XFS only), which berth does not; a tmpfs gets it as its size= mount option.
func SizeUnenforced(opts map[string]string) bool {
	_, ok := opts["size"]
	return ok && opts["type"] != "tmpfs"
}

// validateService checks one service; goodImages are the images found valid so far.
func validateService(st *Stack, s *Service, ps *problems, goodImages map[string]bool) {
	svc := s.Name
	if !goodImages[s.Image] && checkImage(ps, svc, s.Image) {
		goodImages[s.Image] = true
	}
	checkLabels(ps, svc, "labels", s.Labels)
	checkLabels(ps, svc, "deploy.labels", s.Deploy.Labels)
	checkServicePaths(ps, s)
	d := &s.Deploy
	if oneOf(ps, svc, "deploy.mode", d.Mode, deployModes, "mode") {
		if d.Global() && d.Replicas != nil {
			ps.warnf(svc, "deploy.replicas", "remove it: a global service runs one task on every eligible node", "replicas is ignored in %s mode", d.Mode)
			d.Replicas = nil
		}
		if d.Global() && d.Placement.MaxReplicasPerNode != 0 {
			ps.warnf(svc, "deploy.placement.max_replicas_per_node", "remove it: a global service runs at most one task per node anyway", "max_replicas_per_node is ignored in %s mode", d.Mode)
			d.Placement.MaxReplicasPerNode = 0
		}
	}
	for i, expr := range d.Placement.Constraints {
		c, err := ParseConstraint(expr)
		if err != nil {
			ps.problem(svc, entryField("deploy.placement.constraints", i, ""), err)
			continue
		}
		d.Placement.Constraints[i] = c.String()
	}
	for i, p := range d.Placement.Preferences {
		key, err := ParsePreference(p.Spread)
		if err != nil {
			ps.problem(svc, entryField("deploy.placement.preferences", i, ".spread"), err)
			continue
		}
		d.Placement.Preferences[i].Spread = key
	}
	oneOf(ps, svc, "deploy.endpoint_mode", d.EndpointMode, endpointModes, "endpoint mode")
	if rp := d.RestartPolicy; rp != nil {
		oneOf(ps, svc, "deploy.restart_policy.condition", rp.Condition, restartConditions, "restart condition")
	}
	validateUpdate(ps, svc, "deploy.update_config", d.UpdateConfig, updateFailActions)
	validateUpdate(ps, svc, "deploy.rollback_config", d.RollbackConfig, rollbackFailAction)
	if hc := s.Healthcheck; hc != nil && len(hc.Test) > 0 {
		oneOf(ps, svc, "healthcheck.test[0]", hc.Test[0], healthTestKinds, "healthcheck test kind")
	}

	if l := s.Logging; l != nil && (l.MaxSize < 0 || l.MaxFiles < 0) {
		ps.errorf(svc, "logging.options", "give max-size and max-file 1 or more, or leave them out", "the log rotation %d bytes, %d files is negative", l.MaxSize, l.MaxFiles)
	}
	validatePorts(ps, s)
	validateDNS(ps, s)

	for _, n := range s.Networks {
		if _, ok := st.Networks[n.Name]; !ok {
			ps.undefined(svc, "networks."+n.Name, "network", n.Name, slices.Sorted(maps.Keys(st.Networks)))
		}
	}
	for i, m := range s.Mounts {
		oneOfAt(ps, svc, "volumes", i, ".type", m.Type, mountTypes, "mount type")
		switch {
		case m.Type != MountBind || path.IsAbs(m.Source):
		case strings.HasPrefix(m.Source, "~") && !strings.HasPrefix(m.Source, "~/"):
			ps.errorf(svc, entryField("volumes", i, ".source"), "write the absolute host path, such as /home/USER/...",
				"bind source %s names another user's home folder, which berth does not look up", abbrev(m.Source))
		default:
			ps.errorf(svc, entryField("volumes", i, ".source"), "write an absolute host path, or use a named volume",
				"bind source %s is relative, and the nodes have no folder to resolve it against (only `-c` files are resolved, against their folder)", abbrev(m.Source))
		}
		if m.Type != MountVolume || m.Source == "" {
			continue
		}
		if _, ok := st.Volumes[m.Source]; !ok {
			ps.undefined(svc, entryField("volumes", i, ".source"), "volume", m.Source, slices.Sorted(maps.Keys(st.Volumes)))
		}
	}
	for i, r := range s.Secrets {
		if _, ok := st.Secrets[r.Source]; !ok {
			ps.undefined(svc, entryField("secrets", i, ""), "secret", r.Source, slices.Sorted(maps.Keys(st.Secrets)))
		}
	}
	for i, r := range s.Configs {
		if _, ok := st.Configs[r.Source]; !ok {
			ps.undefined(svc, entryField("configs", i, ""), "config", r.Source, slices.Sorted(maps.Keys(st.Configs)))
		}
	}
}

// validateDNS checks dns, dns_search and dns_opt, which become lines of the tasks'
// resolv.conf and the addresses their resolver forwards to.
func validateDNS(ps *problems, s *Service) {
	for i, d := range s.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			ps.errorf(s.Name, entryField("dns", i, ""), "write an IP address such as 192.0.2.53", "%s is not an IP address", abbrev(d))
		}
	}
	for i, d := range s.DNSSearch {
		if d != "." && !isDomain(d) {
			ps.errorf(s.Name, entryField("dns_search", i, ""), "write a domain such as example.com, or . for none", "%s is not a domain name", abbrev(d))
		}
	}
	for i, o := range s.DNSOptions {
		if o == "" || strings.ContainsAny(o, " \t\r\n#;") {
			ps.errorf(s.Name, entryField("dns_opt", i, ""), "write one resolver option such as ndots:2 or edns0", "%s is not a resolver option", abbrev(o))
		}
	}
}

// isDomain reports whether d is a domain name: dot-separated labels of letters,
// digits, '-' and '_', none empty, an optional final dot.
func isDomain(d string) bool {
	d = strings.TrimSuffix(d, ".")
	if d == "" || len(d) > 253 {
		return false
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || strings.IndexFunc(label, func(c rune) bool {
			return !(c < utf8.RuneSelf && (alnum(byte(c)) || c == '-' || c == '_'))
		}) >= 0 {
			return false
		}
	}
	return true
}

// validatePorts checks a service's ports. Field names are made only for a problem:
// this runs on every service of every load.
func validatePorts(ps *problems, s *Service) {
	type portKey struct {
		port     uint32
		protocol string
	}
	var published map[portKey]int
	if len(s.Ports) > 1 {
		published = make(map[portKey]int, len(s.Ports))
	}
	for i, p := range s.Ports {
		if p.Target == 0 || p.Target > 65535 {
			ps.errorf(s.Name, entryField("ports", i, ".target"), "write a port between 1 and 65535", "target port %d is out of range", p.Target)
		}
		oneOfAt(ps, s.Name, "ports", i, ".protocol", p.Protocol, portProtocols, "protocol")
		oneOfAt(ps, s.Name, "ports", i, ".mode", p.Mode, portModes, "port mode")
		if p.Published != 0 && p.Mode == PortModeIngress && s.Deploy.EndpointMode == "dnsrr" {
			ps.errorf(s.Name, entryField("ports", i, ""), "publish it with `mode: host`, or use `endpoint_mode: vip`",
				"port %d is published in ingress mode, which needs a virtual IP, but endpoint_mode is dnsrr", p.Published)
		}
		if p.HostIP != "" {
			validateHostIP(ps, s.Name, entryField("ports", i, ".host_ip"), p)
		}
		if p.Published == 0 || published == nil {
			continue
		}
		key := portKey{p.Published, p.Protocol}
		if j, dup := published[key]; dup {
			ps.errorf(s.Name, entryField("ports", i, ".published"), "publish each port once", "port %d/%s is already published by ports[%d]", p.Published, p.Protocol, j)
			continue
		}
		published[key] = i
	}
}

// entryField names entry i of the list field, followed by sub, for a problem.
func entryField(field string, i int, sub string) string {
	return field + "[" + strconv.Itoa(i) + "]" + sub
}

// checkServicePaths checks the paths inside the container a service names.
func checkServicePaths(ps *problems, s *Service) {
	if s.WorkingDir != "" {
		checkContainerPath(ps, s.Name, "working_dir", -1, "", s.WorkingDir)
	}
	for i, m := range s.Mounts {
		checkContainerPath(ps, s.Name, "volumes", i, ".target", m.Target)
	}
	for i, t := range s.Tmpfs {
		target, _, _ := strings.Cut(t, ":")
		checkContainerPath(ps, s.Name, "tmpfs", i, "", target)
	}
	for i, r := range s.Secrets {
		checkContainerPath(ps, s.Name, "secrets", i, ".target", r.Target)
	}
	for i, r := range s.Configs {
		checkContainerPath(ps, s.Name, "configs", i, ".target", r.Target)
	}
}

func validateUpdate(ps *problems, svc, field string, u *UpdateConfig, actions []string) {
	if u == nil {
		return
	}
	if u.FailureAction != "" {
		oneOf(ps, svc, field+".failure_action", u.FailureAction, actions, "failure action")
	}
	if u.Order != "" {
		oneOf(ps, svc, field+".order", u.Order, updateOrders, "order")
	}
}

// oneOf reports value unless it is one of allowed, suggesting the nearest allowed value.
func oneOf(ps *problems, svc, field, value string, allowed []string, what string) bool {
	if slices.Contains(allowed, value) {
		return true
	}
	fix := "use one of: " + strings.Join(allowed, ", ")
	if near := ClosestWord(value, allowed); near != "" {
		fix = fmt.Sprintf("did you mean %q? Valid values: %s", near, strings.Join(allowed, ", "))
	}
	ps.errorf(svc, field, fix, "%s %s is not valid", what, abbrev(value))
	return false
}

// oneOfAt is oneOf for entry i of the list field (followed by sub), naming the field
// only for a problem.
func oneOfAt(ps *problems, svc, field string, i int, sub, value string, allowed []string, what string) bool {
	return slices.Contains(allowed, value) || oneOf(ps, svc, entryField(field, i, sub), value, allowed, what)
}

// undefined reports a reference to a top-level object the stack does not define.
func (ps *problems) undefined(svc, field, kind, name string, defined []string) {
	fix := fmt.Sprintf("define it under the top-level `%ss:` key", kind)
	if near := ClosestWord(name, defined); near != "" {
		fix = fmt.Sprintf("did you mean %q? Otherwise %s", near, fix)
	}
	ps.errorf(svc, field, fix, "%s %s is not defined", kind, abbrev(name))
}

// problem records an error whose text already explains itself and its fix.
func (ps *problems) problem(svc, field string, err error) {
	ps.errors = append(ps.errors, Problem{Stack: ps.stack, Service: svc, Field: field, Message: err.Error()})
}
