package command

import (
	"errors"
	"testing"
)

// Every command type says in which protocol it appeared, one this build speaks: a new
// command that forgets to register fails here.
func TestEveryCommandHasAVersion(t *testing.T) {
	for typ := range commands {
		v, ok := since[typ]
		if !ok {
			t.Errorf("command %s (%d) has no entry in since (version.go)", typ, uint8(typ))
			continue
		}
		if v < 1 || v > Version {
			t.Errorf("command %s appeared in protocol %d, outside 1..%d", typ, v, Version)
		}
	}
	for typ := range since {
		if !typ.Known() {
			t.Errorf("since has an entry for type %d, which has no command", uint8(typ))
		}
	}
	if got := Type(250).Since(); got <= Version {
		t.Errorf("an unknown type needs protocol %d, want one above %d", got, Version)
	}
}

func TestCheckProtocol(t *testing.T) {
	current := Manager{Name: "node-1", Berth: "v0.3.0", Protocol: 2}
	tests := []struct {
		name     string
		need     int
		managers []Manager
		want     string
	}{
		{"every manager speaks it", 2, []Manager{current, {Name: "node-2", Protocol: 3}}, ""},
		{"protocol 1 needs nothing", 1, []Manager{{Name: "node-2"}}, ""},
		{"a manager that never said", 2, []Manager{current, {Name: "node-2"}},
			"manager node-2 runs an older berth (protocol 1); upgrade every manager before using fake-verb (protocol 2)"},
		{"a manager that said", 3, []Manager{current},
			"manager node-1 runs berth v0.3.0 (protocol 2); upgrade every manager before using fake-verb (protocol 3)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A fake entry of the version table: no command of protocol 2 exists yet.
			err := CheckSince(tc.need, "fake-verb", tc.managers)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want || !errors.Is(err, ErrProtocol) {
				t.Fatalf("err = %v, want %q wrapping ErrProtocol", err, tc.want)
			}
		})
	}
}
