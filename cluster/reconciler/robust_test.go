package reconciler_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/spec"
)

// A state written by a build that had no limit holds a service of a hundred million
// replicas. The leader neither allocates for all of them nor stops serving the other
// services: the huge one gets as many tasks as the cluster's limit allows, made in
// batches, and so does the next leader.
func TestScenarioHugeServiceFromAnOlderBuild(t *testing.T) {
	// Batches smaller than the limit: the leader makes the tasks over several passes,
	// each asking for the next.
	s := newScenario(t, func(o *orchestrator.Options) { o.MaxNewTasks = 1000 })
	s.addNodes(3)
	huge := load(t, "huge", "services:\n  web:\n    image: busybox:1.36\n")
	n := uint64(100_000_000)
	huge.Services["web"].Deploy.Replicas = &n
	cmd, err := control.StackCommand(&api.StackDeployRequest{Stack: huge}, model.NewID)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Limited = false // as a build without the limit wrote it
	if _, err := s.c.Apply(s.ctx, command.CmdStackDeploy, cmd); err != nil {
		t.Fatal(err)
	}
	// The older build's cluster row: no limit recorded, which reads as the default.
	row := &model.Cluster{ID: "c1", Settings: model.DefaultSettings()}
	row.Settings.MaxReplicas = 0
	if _, err := s.c.Apply(s.ctx, command.CmdClusterUpsert, row); err != nil {
		t.Fatal(err)
	}
	s.deploy(load(t, "ok", "services:\n  api:\n    image: busybox:1.36\n    deploy: {replicas: 2}\n"))
	s.converged("ok_api", 2, 2, 0)
	// Its tasks wait for addresses (the stack's /24 has 253), but they are made.
	s.eventually(60*time.Second, "the huge service has as many tasks as the limit", func() error {
		if got := len(s.live("huge_web")); got != spec.DefaultMaxReplicas {
			return fmt.Errorf("%d tasks", got)
		}
		return nil
	})

	// service inspect and service ls say why.
	why := "deploy.replicas: 100000000 is above the cluster's limit of 10000 replicas per service: only 10000 tasks are made; lower it, or raise the limit with berth update --max-replicas N"
	if st := s.service("huge_web"); !slices.Contains(st.Pending, api.PendingReason{Reason: why, Tasks: 100_000_000 - spec.DefaultMaxReplicas}) {
		t.Fatalf("pending %+v, want %q", st.Pending, why)
	}

	if _, err := s.c.TransferLeadership(s.ctx); err != nil {
		t.Fatal(err)
	}
	s.deploy(load(t, "ok", "services:\n  api:\n    image: busybox:1.36\n    deploy: {replicas: 3}\n"))
	s.converged("ok_api", 3, 3, 0)
	if got := len(s.live("huge_web")); got != spec.DefaultMaxReplicas {
		t.Fatalf("after a leader change the huge service has %d live tasks, want %d", got, spec.DefaultMaxReplicas)
	}
}

// A panic while planning one service is that service's failure: the others are
// planned, and the failing one says why in its update status.
func TestScenarioPlanPanicStaysWithItsService(t *testing.T) {
	s := newScenario(t, func(o *orchestrator.Options) {
		// Platforms is asked once per service run: a hook into planning.
		o.Platforms = func(svc *model.Service) []model.Platform {
			if svc.Name == "bad_web" {
				panic("injected fault")
			}
			return nil
		}
	})
	s.addNodes(2)
	s.deploy(load(t, "bad", "services:\n  web:\n    image: busybox:1.36\n    deploy: {replicas: 2}\n"))
	s.deploy(load(t, "ok", "services:\n  api:\n    image: busybox:1.36\n    deploy: {replicas: 2}\n"))
	s.converged("ok_api", 2, 2, 0)
	want := "the orchestrator could not plan this service: injected fault"
	s.eventually(20*time.Second, "the failure is on the service", func() error {
		us := s.service("bad_web").UpdateStatus
		if us.State != model.UpdatePaused || !strings.Contains(us.Message, want) {
			return fmt.Errorf("update status %+v", us)
		}
		return nil
	})
	if ts := s.tasks("bad_web"); len(ts) != 0 {
		t.Fatalf("the failing service has %d tasks", len(ts))
	}
	// The leader keeps serving: a later change to another service is planned.
	s.deploy(load(t, "ok", "services:\n  api:\n    image: busybox:1.36\n    deploy: {replicas: 3}\n"))
	s.converged("ok_api", 3, 3, 0)
}
