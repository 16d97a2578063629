package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Seccomp is a service's seccomp filter when it is not containerd's default profile
// (the one Docker gives every unprivileged container).
type Seccomp struct {
	// Unconfined runs the service without a seccomp filter (seccomp=unconfined).
	Unconfined bool `json:"unconfined,omitempty" yaml:"unconfined,omitempty"`
	// File is the profile's path as written; Profile is its JSON, read when the stack
	// is loaded, in Docker's format (of which the OCI runtime spec's is a subset). The
	// node turns it into the filter, because its conditional rules depend on the
	// container's capabilities and the node's architecture and kernel.
	File    string `json:"file,omitempty" yaml:"file,omitempty"`
	Profile string `json:"profile,omitempty" yaml:"profile,omitempty"`
}

// securityOptFix lists what security_opt accepts, for errors about it.
const securityOptFix = "write seccomp=unconfined|builtin|<profile.json>, no-new-privileges[=true|false], " +
	"systempaths=unconfined, writable-cgroups[=true|false], apparmor=unconfined or label=disable"

// applySecurityOpt sets s's security fields from security_opt, read as Docker does:
// key=value, the older key:value, or a bare no-new-privileges; a later entry for the
// same key wins. s.Privileged must already be set.
func applySecurityOpt(ps *problems, s *Service, opts LoadOptions, list []string) {
	service := s.Name
	seccompField := ""
	for i, opt := range list {
		field := fmt.Sprintf("security_opt[%d]", i)
		key, value, ok := strings.Cut(opt, "=")
		if !ok {
			key, value, ok = strings.Cut(opt, ":")
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok && key == "no-new-privileges" {
			value, ok = "true", true
		}
		if !ok {
			ps.errorf(service, field, securityOptFix, "%q is not key=value", opt)
			continue
		}
		switch key {
		case "seccomp":
			s.Seccomp, seccompField = convertSeccomp(ps, service, field, opts, value), field
		case "no-new-privileges":
			s.NoNewPrivileges = parseSecurityBool(ps, service, field, key, value)
		case "writable-cgroups":
			s.WritableCgroups = parseSecurityBool(ps, service, field, key, value)
		case "systempaths":
			if value != "unconfined" {
				ps.errorf(service, field, "write systempaths=unconfined, or remove it", "systempaths takes only unconfined, not %q", value)
			}
			s.SystemPathsUnconfined = value == "unconfined"
		case "apparmor":
			// berth loads no AppArmor profile, so unconfined is what every task gets; a
			// named profile would be confinement the task silently lacks.
			if value != "unconfined" {
				ps.errorf(service, field, "remove it, or confine the service with a seccomp profile (seccomp=<profile.json>)",
					"berth does not apply AppArmor profiles: %q cannot be honoured", value)
			}
		case "label":
			// Likewise for SELinux labels: there is nothing to disable.
			if value != "disable" {
				ps.errorf(service, field, "remove it: berth does not label containers for SELinux",
					"berth does not apply SELinux labels: %q cannot be honoured", value)
			}
		default:
			ps.errorf(service, field, securityOptFix, "unknown security option %q", key)
		}
	}
	if s.Privileged && s.Seccomp != nil && !s.Seccomp.Unconfined {
		ps.warnf(service, seccompField, "remove it, or drop privileged", "a privileged service runs without a seccomp filter, as in Docker: the seccomp option is ignored")
	}
}

func parseSecurityBool(ps *problems, service, field, key, value string) bool {
	b, err := strconv.ParseBool(value)
	if err != nil {
		ps.errorf(service, field, fmt.Sprintf("write %s=true or %s=false", key, key), "%s takes true or false, not %q", key, value)
	}
	return b
}

// convertSeccomp reads seccomp=VALUE: nil for the default profile.
func convertSeccomp(ps *problems, service, field string, opts LoadOptions, value string) *Seccomp {
	switch value {
	case "builtin", "default":
		return nil
	case "unconfined":
		return &Seccomp{Unconfined: true}
	case "":
		ps.errorf(service, field, "write seccomp=unconfined, seccomp=builtin or the path of a profile", "seccomp has no value")
		return nil
	}
	data, err := readRef(opts, value)
	if err != nil {
		ps.errorf(service, field, "fix the path; relative paths start at the stack's folder", "cannot read the seccomp profile %s: %v", value, err)
		return nil
	}
	if err := checkSeccompProfile(data); err != nil {
		ps.errorf(service, field, "write the profile in Docker's seccomp format (defaultAction, syscalls with names and action)",
			"seccomp profile %s: %v", value, err)
		return nil
	}
	return &Seccomp{File: value, Profile: string(data)}
}

var seccompActions = []specs.LinuxSeccompAction{
	specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap, specs.ActErrno,
	specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify,
}

var seccompOperators = []specs.LinuxSeccompOperator{
	specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
	specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
}

// checkSeccompProfile refuses, when the stack is loaded, a profile that every node
// would refuse: the rules that depend on the node are resolved there.
func checkSeccompProfile(data []byte) error {
	var p mobyseccomp.Seccomp
	if err := json.Unmarshal(data, &p); err != nil {
		return fmt.Errorf("not JSON of a seccomp profile: %w", err)
	}
	if p.DefaultAction == "" {
		return errors.New("it has no defaultAction (to run without a filter, write seccomp=unconfined)")
	}
	if !slices.Contains(seccompActions, p.DefaultAction) {
		return fmt.Errorf("defaultAction %q is not a seccomp action such as SCMP_ACT_ERRNO or SCMP_ACT_ALLOW", p.DefaultAction)
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		return errors.New("it has both architectures and archMap: keep one")
	}
	for i, call := range p.Syscalls {
		if call == nil {
			return fmt.Errorf("syscalls[%d] is empty", i)
		}
		switch {
		case call.Name != "" && len(call.Names) > 0:
			return fmt.Errorf("syscalls[%d] has both name and names: keep one", i)
		case call.Name == "" && len(call.Names) == 0:
			return fmt.Errorf("syscalls[%d] names no syscall", i)
		case !slices.Contains(seccompActions, call.Action):
			return fmt.Errorf("syscalls[%d]: action %q is not a seccomp action such as SCMP_ACT_ERRNO or SCMP_ACT_ALLOW", i, call.Action)
		}
		for j, arg := range call.Args {
			if !slices.Contains(seccompOperators, arg.Op) {
				return fmt.Errorf("syscalls[%d].args[%d]: op %q is not a seccomp operator such as SCMP_CMP_EQ", i, j, arg.Op)
			}
		}
	}
	return nil
}
