package store

import (
	"errors"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// Every write that sets replicas is refused above the cluster's limit, whichever path
// it comes by: a deploy, a source's sync, a scale, a dry run on a fork. Nothing of a
// refused entry is written. An entry of a build that had no limit applies as it did.
func TestReplicasAboveTheLimitAreRefusedByTheFSM(t *testing.T) {
	h := newFSMHarness(t)
	want := "stack web, service api, deploy.replicas: 100000000 is above the cluster's limit of 10000 replicas per service"
	huge := deploy(webStack("nginx:1", 100_000_000), "pw", "conf", false)
	huge.Limited = true
	if err := command.Simulate(h.f.State().Fork(), command.CmdStackDeploy, huge); !errors.Is(err, state.ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Fatalf("dry run of a deploy of 100000000 replicas: %v, want ErrInvalid saying %q", err, want)
	}
	if err := h.apply(command.CmdStackDeploy, huge); !errors.Is(err, state.ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Fatalf("deploy of 100000000 replicas: %v, want ErrInvalid saying %q", err, want)
	}
	if got := h.stackNames(); len(got) != 0 {
		t.Fatalf("stacks after the refused deploy: %v", got)
	}

	h.must(command.CmdSourceAdd, &command.SourceAdd{Source: &model.Source{Name: "infra", Kind: model.SourceGitPull, URL: "file:///r", Branch: "main"}})
	synced := sourceStack("infra", "r1", "app", "nginx:1")
	synced.Stack.Spec.Services["app"].Deploy.Replicas = ptr(uint64(10_001))
	synced.Limited = true
	if err := h.apply(command.CmdSourceSync, syncOf("infra", "r1", false, synced)); !errors.Is(err, state.ErrInvalid) || !strings.Contains(err.Error(), "10001 is above the cluster's limit of 10000") {
		t.Fatalf("sync of 10001 replicas: %v", err)
	}

	h.must(command.CmdStackDeploy, deploy(webStack("nginx:1", 3), "pw", "conf", false))
	svc, err := h.tx().ServiceByName(nil, "web_api")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.apply(command.CmdServiceScale, &command.ServiceScale{ID: svc.ID, Replicas: 10_001, Limited: true}); !errors.Is(err, state.ErrInvalid) || !strings.Contains(err.Error(), "10001 is above the cluster's limit of 10000") {
		t.Fatalf("scale to 10001: %v", err)
	}
	row := &model.Cluster{ID: "c1", Settings: model.DefaultSettings()}
	row.Settings.MaxReplicas = 20_000
	h.must(command.CmdClusterUpsert, row)
	h.must(command.CmdServiceScale, &command.ServiceScale{ID: svc.ID, Replicas: 10_001, Limited: true})

	// The log of a build that had no limit replays as it was written.
	huge.Limited = false
	h.must(command.CmdStackDeploy, huge)
	if svc, err := h.tx().ServiceByName(nil, "web_api"); err != nil || *svc.Spec.Deploy.Replicas != 100_000_000 {
		t.Fatalf("an older build's deploy: %v, %v", svc, err)
	}
}
