package state

import (
	"errors"
	"testing"
)

func TestLookupRef(t *testing.T) {
	type obj struct{ id, name string }
	objects := []obj{{"abc123", "web"}, {"abd456", "db"}, {"xyz789", "cache"}}
	find := func(match func(obj) bool) func(string) (obj, error) {
		return func(string) (obj, error) {
			for _, o := range objects {
				if match(o) {
					return o, nil
				}
			}
			return obj{}, ErrNotFound
		}
	}
	for _, tt := range []struct {
		ref    string
		wantID string
		wantN  int
	}{
		{"abc123", "abc123", 1}, // full ID
		{"db", "abd456", 1},     // name
		{"xy", "xyz789", 1},     // unique prefix
		{"ab", "", 2},           // ambiguous prefix
		{"nope", "", 0},
	} {
		got, n, err := LookupRef(tt.ref,
			func(ref string) (obj, error) { return find(func(o obj) bool { return o.id == ref })(ref) },
			func(ref string) (obj, error) { return find(func(o obj) bool { return o.name == ref })(ref) },
			func() ([]obj, error) { return objects, nil },
			func(o obj) string { return o.id })
		if err != nil || n != tt.wantN || got.id != tt.wantID {
			t.Errorf("LookupRef(%q) = %q, %d, %v; want %q, %d", tt.ref, got.id, n, err, tt.wantID, tt.wantN)
		}
	}
	boom := errors.New("boom")
	_, _, err := LookupRef("x",
		func(string) (obj, error) { return obj{}, ErrNotFound },
		func(string) (obj, error) { return obj{}, ErrNotFound },
		func() ([]obj, error) { return nil, boom },
		func(o obj) string { return o.id })
	if !errors.Is(err, boom) {
		t.Errorf("listing error: got %v", err)
	}
}
