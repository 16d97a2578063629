package spec

import "maps"

// StandaloneStack is the stack a service of no stack (`berth service create`) is
// checked and resolved against: what it names is the cluster's, by the name given,
// as in Docker. Its networks, secrets and configs must exist already (external); a
// named volume is the node's local volume of that name. The stack has no name.
func StandaloneStack(s *Service) *Stack {
	st := &Stack{Services: map[string]*Service{s.Name: s}}
	for _, n := range s.Networks {
		if st.Networks == nil {
			st.Networks = map[string]*Network{}
		}
		st.Networks[n.Name] = &Network{Name: n.Name, Driver: "overlay", External: true}
	}
	for _, m := range s.Mounts {
		if m.Type != MountVolume || m.Source == "" {
			continue
		}
		if st.Volumes == nil {
			st.Volumes = map[string]*Volume{}
		}
		st.Volumes[m.Source] = &Volume{Name: m.Source, DriverOpts: maps.Clone(m.DriverOpts)}
	}
	for _, r := range s.Secrets {
		if st.Secrets == nil {
			st.Secrets = map[string]*Secret{}
		}
		st.Secrets[r.Source] = &Secret{FileObject: FileObject{Name: r.Source, External: true}}
	}
	for _, r := range s.Configs {
		if st.Configs == nil {
			st.Configs = map[string]*Config{}
		}
		st.Configs[r.Source] = &Config{FileObject: FileObject{Name: r.Source, External: true}}
	}
	return st
}

// ValidateService checks one service as a manager receives it (`service create`,
// `service update`), by the rules Validate holds a stack's services to, against
// stack, the stack it belongs to, or, when nil, its StandaloneStack; it normalizes
// the service the same way, and nothing of stack. A failure is a *ValidationError.
func ValidateService(stack *Stack, s *Service) error {
	if s == nil {
		return &ValidationError{Problems: []Problem{{Message: "no service given"}}}
	}
	if stack == nil {
		stack = StandaloneStack(s)
	}
	ps := &problems{stack: stack.Name}
	if checkServiceEntry(stack.Name, s.Name, s, ps) {
		validateService(stack, s, ps, map[string]bool{})
	}
	return ps.err()
}
