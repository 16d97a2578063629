package control

import (
	"errors"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

func TestResolveNode(t *testing.T) {
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(1, func(w *state.WriteTxn) error {
		for _, n := range []struct{ id, host string }{{"abc123", "node-1"}, {"abd456", "node-2"}, {"xyz789", "abc"}} {
			if err := w.UpsertNode(&model.Node{ID: n.id, Hostname: n.host, Role: model.RoleWorker,
				Availability: model.AvailabilityActive, Status: model.NodeStatus{State: model.NodeReady}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tx := st.ReadTxn()
	for ref, want := range map[string]string{"abc123": "abc123", "node-2": "abd456", "xyz": "xyz789", "abd": "abd456",
		"abc": "xyz789"} { // an exact hostname wins over an ID prefix, as in Docker
		n, err := resolveNode(tx, ref)
		if err != nil || n.ID != want {
			t.Errorf("resolve %q = %v, %v; want %s", ref, n, err, want)
		}
	}
	if _, err := resolveNode(tx, "ab"); !errors.Is(err, api.ErrBadRequest) || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("ambiguous prefix: %v", err)
	}
	if _, err := resolveNode(tx, "nope"); !errors.Is(err, state.ErrNotFound) || err.Error() != "no such node: nope (berth node ls lists them)" {
		t.Errorf("missing node: %v", err)
	}
}
