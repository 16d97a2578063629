package applier

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// drift lists the changes made outside Git to the services of a source's stacks
// (`service scale`, `service update`): the live spec against the one the stack row
// holds from the source's revision. A service of the revision that is missing counts
// too.
func drift(tx *state.ReadTxn, source string) ([]string, error) {
	stacks, err := tx.StacksBySource(nil, source)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, st := range stacks {
		if st.Spec == nil {
			continue
		}
		live := *st.Spec
		live.Services = map[string]*spec.Service{}
		changed := false
		for _, key := range slices.Sorted(maps.Keys(st.Spec.Services)) {
			want := st.Spec.Services[key]
			svc, err := tx.ServiceByName(nil, spec.FullName(st.Name, key))
			if err != nil {
				out = append(out, fmt.Sprintf("service %s is missing", spec.FullName(st.Name, key)))
				continue
			}
			live.Services[key] = &svc.Spec
			if !bytes.Equal(svc.Spec.Canonical(), want.Canonical()) {
				changed = true
			}
		}
		if !changed {
			continue
		}
		for _, sc := range spec.Diff(&live, st.Spec).Services {
			if sc.Action != spec.ActionChange {
				continue
			}
			fields := make([]string, 0, len(sc.Fields))
			for _, f := range sc.Fields {
				fields = append(fields, fmt.Sprintf("%s is %s, Git says %s", f.Path, orNone(f.Old), orNone(f.New)))
			}
			// sc.Name is the full name already: the diff is of the stack.
			out = append(out, fmt.Sprintf("service %s: %s", sc.Name, strings.Join(fields, "; ")))
		}
	}
	return out, nil
}

func orNone(v string) string {
	if v == "" {
		return "unset"
	}
	return v
}

// driftMessage is what `source ls` shows of drift.
func driftMessage(changes []string, healed bool) string {
	if healed {
		return "self-heal reverted changes made outside Git: " + strings.Join(changes, "; ")
	}
	return "changed outside Git (add --self-heal to the source to revert such changes): " + strings.Join(changes, "; ")
}
