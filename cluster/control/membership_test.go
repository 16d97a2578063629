package control

import (
	"errors"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/api"
)

func TestCheckQuorum(t *testing.T) {
	up := func(ids ...string) func(string) bool {
		return func(id string) bool {
			for _, u := range ids {
				if u == id {
					return true
				}
			}
			return false
		}
	}
	for _, tc := range []struct {
		name    string
		voters  []string
		up      []string
		remove  string
		refused string // substring of the refusal, "" for allowed
	}{
		{"not a voter", []string{"a", "b", "c"}, []string{"a"}, "w", ""},
		{"3 up, remove one", []string{"a", "b", "c"}, []string{"a", "b", "c"}, "c", ""},
		{"3, one down, remove the down one", []string{"a", "b", "c"}, []string{"a", "b"}, "c", ""},
		{"3, one down, remove an up one", []string{"a", "b", "c"}, []string{"a", "b"}, "b", "would leave 1 of 2 managers reachable, and raft needs a majority of 2"},
		{"2 up, remove one", []string{"a", "b"}, []string{"a", "b"}, "b", ""},
		{"last manager", []string{"a"}, []string{"a"}, "a", "without a manager"},
		{"5, two down, remove an up one", []string{"a", "b", "c", "d", "e"}, []string{"a", "b", "c"}, "a", "would leave 2 of 4 managers reachable, and raft needs a majority of 3"},
		{"5, two down, remove a down one", []string{"a", "b", "c", "d", "e"}, []string{"a", "b", "c"}, "e", ""},
	} {
		err := checkQuorum(tc.voters, up(tc.up...), tc.remove, "demoting "+tc.remove)
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused) || !errors.Is(err, api.ErrQuorum)):
			t.Errorf("%s: err = %v, want a quorum refusal saying %q", tc.name, err, tc.refused)
		}
	}
}
