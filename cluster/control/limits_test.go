package control_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store"
)

// A stack or a scale above the cluster's limit of replicas per service is refused as
// a bad request naming the stack, the service, the field and the limit, and writes
// nothing; raising the limit lets it through.
func TestReplicasAboveTheLimitAreRefused(t *testing.T) {
	_, m := oneManager(t)
	ctx := context.Background()
	huge := stack("app:1", "x")
	n := uint64(100_000_000)
	huge.Stack.Services["api"].Deploy.Replicas = &n
	_, err := m.Control.DeployStack(ctx, huge)
	want := "stack web, service api, deploy.replicas: 100000000 is above the cluster's limit of 10000 replicas per service; lower it, or raise the limit with berth update --max-replicas N"
	if !errors.Is(err, state.ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Fatalf("deploy of 100000000 replicas: %v, want a bad request saying %q", err, want)
	}
	if _, err := m.Store.State().ReadTxn().Stack(nil, "web"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("the refused stack was stored: %v", err)
	}

	if _, err := m.Control.DeployStack(ctx, stack("app:1", "x")); err != nil {
		t.Fatal(err)
	}
	setLimit(t, m.Store, 5)
	_, err = m.Control.ScaleService(ctx, "web_api", 6)
	if !errors.Is(err, state.ErrInvalid) || !strings.Contains(err.Error(), "stack web, service api, deploy.replicas: 6 is above the cluster's limit of 5") {
		t.Fatalf("scale to 6: %v, want a bad request naming the field and the limit", err)
	}
	svc, err := m.Store.State().ReadTxn().ServiceByName(nil, "web_api")
	if err != nil || *svc.Spec.Deploy.Replicas != 1 {
		t.Fatalf("after the refused scale: %v, %v; want 1 replica", svc, err)
	}

	setLimit(t, m.Store, 10)
	if _, err := m.Control.ScaleService(ctx, "web_api", 6); err != nil {
		t.Fatalf("scale to 6 under a limit of 10: %v", err)
	}
}

func setLimit(t *testing.T, st *store.Store, limit uint64) {
	t.Helper()
	row := &model.Cluster{ID: "c1", Settings: model.DefaultSettings()}
	row.Settings.MaxReplicas = limit
	if _, err := st.Apply(context.Background(), command.CmdClusterUpsert, row); err != nil {
		t.Fatal(err)
	}
}
