package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/spec"
)

// A stack of a hundred million replicas, sent to the API with the CLI's check
// bypassed, is refused by the managers with the field and the limit named, for a
// deploy and for a dry run; every manager keeps running. `berth update
// --max-replicas` changes the limit, which `berth info` shows and the refusal names.
func TestReplicaLimitProcesses(t *testing.T) {
	c := newProcCluster(t, "lim-1", "lim-2", "lim-3")
	c.start("lim-1", "lim-2", "lim-3")
	c.initCluster("lim-1", []string{"lim-2", "lim-3"}, nil)

	file := filepath.Join(c.root, "huge.yaml")
	if err := os.WriteFile(file, []byte("services:\n  web:\n    image: busybox:1.36\n    deploy: {replicas: 100000000}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The CLI refuses it offline.
	c.fails("lim-1", "", "deploy.replicas: 100000000 is above 1000000", "validate", "-c", file)

	n := uint64(100_000_000)
	huge := &spec.Stack{Name: "huge", Services: map[string]*spec.Service{"web": {Name: "web", Image: "busybox:1.36",
		Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: &n, EndpointMode: "vip"}}}}
	refused := func(limit uint64) {
		t.Helper()
		want := fmt.Sprintf("stack huge, service web, deploy.replicas: 100000000 is above the cluster's limit of %d replicas per service; lower it, or raise the limit with berth update --max-replicas N", limit)
		client := c.d("lim-2").Client() // a follower: the write is forwarded
		_, deployErr := client.DeployStack(c.ctx, &api.StackDeployRequest{Stack: huge})
		_, planErr := client.Plan(c.ctx, &api.PlanRequest{Stacks: []*api.StackDeployRequest{{Stack: huge}}})
		for what, err := range map[string]error{"deploy": deployErr, "dry run": planErr} {
			var apiErr *api.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || !strings.Contains(apiErr.Message, want) {
				t.Fatalf("%s of 100000000 replicas: %v, want 400 saying %q", what, err, want)
			}
		}
		for _, name := range []string{"lim-1", "lim-2", "lim-3"} {
			if !c.d(name).Running() {
				t.Fatalf("%s stopped:\n%s", name, c.d(name).LogTail(30))
			}
		}
		if out := c.must("lim-3", "stack", "ls").Stdout; strings.Contains(out, "huge") {
			t.Fatalf("the refused stack is listed:\n%s", out)
		}
	}
	refused(spec.DefaultMaxReplicas)
	if info := c.info("lim-1"); info.MaxReplicas != spec.DefaultMaxReplicas {
		t.Fatalf("info shows max replicas %d, want the default", info.MaxReplicas)
	}

	c.fails("lim-1", "", "give a number from 1 to 1000000", "update", "--max-replicas", "0")
	three := uint64(3)
	small := &spec.Stack{Name: "small", Services: map[string]*spec.Service{"api": {Name: "api", Image: "busybox:1.36",
		Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: &three, EndpointMode: "vip"}}}}
	if _, err := c.d("lim-1").Client().DeployStack(c.ctx, &api.StackDeployRequest{Stack: small}); err != nil {
		t.Fatal(err)
	}
	c.fails("lim-1", "", "max-replicas 2: service small_api asks for 3 replicas: scale it down first", "update", "--max-replicas", "2")
	if r := c.must("lim-1", "update", "--max-replicas", "20000"); !strings.Contains(r.Stdout, "Cluster updated.") {
		t.Fatalf("update --max-replicas: %v", r)
	}
	// Every manager, lim-2 included, which refused() asks: a follower checks a
	// request against the state it has applied, a few milliseconds behind.
	c.eventually(10*time.Second, func() error {
		for _, name := range []string{"lim-2", "lim-3"} {
			if out := c.must(name, "info").Stdout; !strings.Contains(out, "Max Replicas per Service: 20000") {
				return fmt.Errorf("info on %s:\n%s", name, out)
			}
		}
		return nil
	})
	refused(20_000)
}
