package command

import (
	"errors"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// caState is a cluster of two nodes whose certificates chain to root "old".
func caState(t *testing.T) *state.Store {
	t.Helper()
	s, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	tx := s.WriteTxn(1)
	must(t, tx.UpsertCluster(&model.Cluster{ID: "c1", RootCACert: "old-pem"}))
	for _, id := range []string{"n1", "n2"} {
		must(t, tx.UpsertNode(&model.Node{ID: id, Hostname: id, Role: model.RoleWorker, Availability: model.AvailabilityActive, Status: model.NodeStatus{State: model.NodeReady}, CertRoot: "old"}))
	}
	must(t, tx.Commit())
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func rotation(t *testing.T, s *state.Store) *model.RootRotation {
	t.Helper()
	cl, err := s.ReadTxn().Cluster(nil)
	must(t, err)
	return cl.RootRotation
}

var rotate = CARotate{ExpectRootCACert: "old-pem", RootCACert: "new-pem", RootCAKey: "new-key", CrossSigned: "cross", Digest: "new",
	JoinTokens: model.JoinTokens{Worker: "w", Manager: "m"}, At: time.Unix(100, 0).UTC()}

func TestCARotateStartsRotation(t *testing.T) {
	s := caState(t)
	must(t, Simulate(s, CmdCARotate, rotate))
	cl, err := s.ReadTxn().Cluster(nil)
	must(t, err)
	want := model.RootRotation{PrevCACert: "old-pem", CrossSigned: "cross", Digest: "new", StartedAt: rotate.At}
	if cl.RootCACert != "new-pem" || cl.RootCAKey != "new-key" || cl.JoinTokens.Worker != "w" || cl.RootRotation == nil || *cl.RootRotation != want {
		t.Fatalf("cluster after rotate: %+v %+v", cl, cl.RootRotation)
	}
}

func TestCARotateRefusesStaleOrConcurrent(t *testing.T) {
	s := caState(t)
	stale := rotate
	stale.ExpectRootCACert = "other"
	if err := Simulate(s, CmdCARotate, stale); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("rotation over another root: err = %v, want ErrConflict", err)
	}
	must(t, Simulate(s, CmdCARotate, rotate))
	again := rotate
	again.ExpectRootCACert = "new-pem"
	if err := Simulate(s, CmdCARotate, again); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("second rotation while one is under way: err = %v, want ErrConflict", err)
	}
}

func TestNodeCertEndsRotationWhenEveryNodeRotated(t *testing.T) {
	s := caState(t)
	must(t, Simulate(s, CmdCARotate, rotate))
	must(t, Simulate(s, CmdNodeCert, NodeCert{ID: "n1", Serial: "a1", Root: "new"}))
	if rotation(t, s) == nil {
		t.Fatal("rotation ended with n2 still on the old root")
	}
	nd, err := s.ReadTxn().Node(nil, "n1")
	must(t, err)
	if nd.CertSerial != "a1" || nd.CertRoot != "new" {
		t.Fatalf("node n1 records %s/%s", nd.CertSerial, nd.CertRoot)
	}
	must(t, Simulate(s, CmdNodeCert, NodeCert{ID: "n2", Serial: "a2", Root: "new"}))
	if r := rotation(t, s); r != nil {
		t.Fatalf("rotation still under way after every node rotated: %+v", r)
	}
}

func TestNodeRemoveEndsRotation(t *testing.T) {
	s := caState(t)
	must(t, Simulate(s, CmdCARotate, rotate))
	must(t, Simulate(s, CmdNodeCert, NodeCert{ID: "n1", Serial: "a1", Root: "new"}))
	must(t, Simulate(s, CmdNodeRemove, NodeRemove{ID: "n2"}))
	if r := rotation(t, s); r != nil {
		t.Fatalf("rotation still under way after the last old-root node was removed: %+v", r)
	}
}
