package svcflags

import (
	"fmt"
	"slices"
	"strings"

	"github.com/berthd/berth/spec"
)

// apply adds the entries of l to s; an entry with the key of one s has replaces it,
// as Docker's --*-add do.
func (l Lists) apply(s *spec.Service, lookupEnv func(string) (string, bool)) error {
	for _, e := range l.Env {
		k, v, ok := strings.Cut(e, "=")
		if !ok && lookupEnv != nil {
			v, ok = lookupEnv(k)
		}
		if k == "" {
			return fmt.Errorf("invalid --env %q: write KEY=VALUE", e)
		}
		if ok {
			s.Environment = setKey(s.Environment, k, v)
		}
	}
	for _, e := range l.Labels {
		k, v, _ := strings.Cut(e, "=")
		if k == "" {
			return fmt.Errorf("invalid --label %q: write KEY=VALUE", e)
		}
		s.Deploy.Labels = setKey(s.Deploy.Labels, k, v)
	}
	p := &s.Deploy.Placement
	for _, c := range l.Constraints {
		if !slices.Contains(p.Constraints, c) {
			p.Constraints = append(p.Constraints, c)
		}
	}
	for _, e := range l.Prefs {
		key, ok := strings.CutPrefix(e, "spread=")
		if !ok {
			return fmt.Errorf("invalid --placement-pref %q: write spread=node.labels.KEY", e)
		}
		p.Preferences = append(p.Preferences, spec.Preference{Spread: key})
	}
	return l.applyParsed(s)
}

// applyParsed adds the entries written in Docker's csv forms.
func (l Lists) applyParsed(s *spec.Service) error {
	for _, e := range l.Mounts {
		m, err := parseMount(e)
		if err != nil {
			return err
		}
		s.Mounts = append(slices.DeleteFunc(s.Mounts, func(x spec.Mount) bool { return x.Target == m.Target }), m)
	}
	for _, e := range l.Publish {
		pt, err := parsePort(e)
		if err != nil {
			return err
		}
		s.Ports = append(slices.DeleteFunc(s.Ports, func(x spec.Port) bool { return samePort(x, pt) }), pt)
	}
	for _, e := range l.Networks {
		n, err := parseNetwork(e)
		if err != nil {
			return err
		}
		s.Networks = append(slices.DeleteFunc(s.Networks, func(x spec.ServiceNetwork) bool { return x.Name == n.Name }), n)
	}
	for _, e := range l.Secrets {
		r, err := parseFileRef("secret", e, "/run/secrets/")
		if err != nil {
			return err
		}
		s.Secrets = append(slices.DeleteFunc(s.Secrets, func(x spec.FileReference) bool { return x.Source == r.Source }), r)
	}
	for _, e := range l.Configs {
		r, err := parseFileRef("config", e, "/")
		if err != nil {
			return err
		}
		s.Configs = append(slices.DeleteFunc(s.Configs, func(x spec.FileReference) bool { return x.Source == r.Source }), r)
	}
	return nil
}

// samePort: a published port is one entry per published port and protocol, an
// unpublished one per target and protocol.
func samePort(a, b spec.Port) bool {
	if a.Protocol != b.Protocol {
		return false
	}
	if a.Published != 0 || b.Published != 0 {
		return a.Published == b.Published
	}
	return a.Target == b.Target
}

// remove deletes the entries l names from s; a name s does not have is no
// error, as in Docker, so that scripts may repeat an update.
func (l Lists) remove(s *spec.Service) {
	for _, k := range l.Env {
		delete(s.Environment, k)
	}
	for _, k := range l.Labels {
		delete(s.Deploy.Labels, k)
	}
	p := &s.Deploy.Placement
	for _, k := range l.Constraints {
		p.Constraints = slices.DeleteFunc(p.Constraints, func(c string) bool { return sameConstraint(c, k) })
	}
	for _, k := range l.Mounts {
		s.Mounts = slices.DeleteFunc(s.Mounts, func(m spec.Mount) bool { return m.Target == k })
	}
	for _, k := range l.Publish {
		s.Ports = slices.DeleteFunc(s.Ports, portMatcher(k))
	}
	for _, k := range l.Networks {
		s.Networks = slices.DeleteFunc(s.Networks, func(n spec.ServiceNetwork) bool { return n.Name == k })
	}
	for _, k := range l.Secrets {
		s.Secrets = slices.DeleteFunc(s.Secrets, func(r spec.FileReference) bool { return r.Source == k })
	}
	for _, k := range l.Configs {
		s.Configs = slices.DeleteFunc(s.Configs, func(r spec.FileReference) bool { return r.Source == k })
	}
}

// sameConstraint compares constraints by their canonical text, so that
// `node.role==manager` removes `node.role == manager`.
func sameConstraint(a, b string) bool {
	ca, errA := spec.ParseConstraint(a)
	cb, errB := spec.ParseConstraint(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return ca.String() == cb.String()
}

// portMatcher matches the ports --publish-rm names: by target port as Docker does
// (PORT[/PROTOCOL]), or by PUBLISHED:TARGET.
func portMatcher(k string) func(spec.Port) bool {
	want, err := parsePort(k)
	if err != nil {
		return func(spec.Port) bool { return false }
	}
	return func(p spec.Port) bool {
		return p.Target == want.Target && p.Protocol == want.Protocol && (want.Published == 0 || want.Published == p.Published)
	}
}

func setKey(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}
