package spec

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
)

// canonicalize sorts every list whose order carries no meaning, so that two stacks that
// mean the same encode to the same bytes whatever order their files listed things in.
// Lists where order matters (command, entrypoint, healthcheck test, spread preferences,
// subnets) are left as written.
func canonicalize(st *Stack) {
	for _, s := range st.Services {
		s.CapAdd = sortedSet(s.CapAdd)
		s.CapDrop = sortedSet(s.CapDrop)
		s.Tmpfs = sortedSet(s.Tmpfs)
		s.Deploy.Placement.Constraints = sortedSet(s.Deploy.Placement.Constraints)
		for i := range s.Networks {
			s.Networks[i].Aliases = sortedSet(s.Networks[i].Aliases)
		}
		slices.SortFunc(s.Networks, func(a, b ServiceNetwork) int { return strings.Compare(a.Name, b.Name) })
		slices.SortFunc(s.Devices, func(a, b Device) int { return strings.Compare(a.Source, b.Source) })
		slices.SortFunc(s.Ports, func(a, b Port) int {
			return cmp.Or(cmp.Compare(a.Target, b.Target), cmp.Compare(a.Published, b.Published),
				strings.Compare(a.Protocol, b.Protocol), strings.Compare(a.Mode, b.Mode))
		})
		slices.SortFunc(s.Mounts, func(a, b Mount) int { return strings.Compare(a.Target, b.Target) })
		slices.SortFunc(s.Secrets, compareReference)
		slices.SortFunc(s.Configs, compareReference)
	}
}

func compareReference(a, b FileReference) int {
	return cmp.Or(strings.Compare(a.Target, b.Target), strings.Compare(a.Source, b.Source))
}

// sortedSet sorts and de-duplicates; nil stays nil.
func sortedSet(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return slices.Compact(s)
}

// Canonical is the service's canonical encoding: JSON with sorted keys, defaults filled in,
// no secret values. Equal bytes mean an equal desired state.
func (s *Service) Canonical() []byte {
	b, err := json.Marshal(s)
	if err != nil {
		// Every field is a plain value, string, map or slice of them.
		panic("spec: service cannot be encoded: " + err.Error())
	}
	return b
}

// Hash is the SHA-256 of the canonical encoding, as hex. It is what the agent labels
// containers with (io.berth.spec-hash) to detect drift.
func (s *Service) Hash() string {
	sum := sha256.Sum256(s.Canonical())
	return hex.EncodeToString(sum[:])
}
