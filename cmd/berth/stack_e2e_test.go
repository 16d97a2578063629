package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/internal/clustertest"
)

// TestStackProcesses deploys the examples on three real daemons whose nodes run
// simulated agents (`--sim-agent`: tasks are reported running, nothing is started):
// examples/web's 5 replicas at most 1 per node run 3/5 with the 2 others pending and
// the reason in `service ps`; a service added beside them converges and `--detach=false`
// returns without waiting for the pending ones; a stack that can converge does, with --detach=false; a
// secret's content shows in no output and no log; `stack rm` removes everything.
func TestStackProcesses(t *testing.T) {
	c := newProcClusterArgs(t, testDaemonArgs, "node-1", "node-2", "node-3")
	c.start("node-1", "node-2", "node-3")
	c.initCluster("node-1", []string{"node-2"}, []string{"node-3"})
	c.eventually(20*time.Second, func() error {
		rows, err := parseNodeLs(c.must("node-1", "node", "ls").Stdout)
		if err != nil {
			return err
		}
		for host, row := range rows {
			if row.status != "Ready" {
				return fmt.Errorf("%s is %s", host, row.status)
			}
		}
		if len(rows) != 3 {
			return fmt.Errorf("%d nodes", len(rows))
		}
		return nil
	})

	// A dry run first (through a follower): the plan, where the tasks would land
	// and why two cannot, exit 1 for differences, and nothing written.
	r := c.run("node-2", "stack", "deploy", "--dry-run", "-c", "../../examples/web/compose.yaml", "web")
	t.Logf("stack deploy --dry-run:\n%s", r.Stdout)
	if r.Code != 1 || !strings.Contains(r.Stdout, "+ service web_nginx") || strings.Count(r.Stdout, " -> ") != 3 ||
		!strings.Contains(r.Stdout, "! 2 tasks cannot be placed: no suitable node (max replicas per node limit reached on 3 nodes)") {
		t.Fatalf("stack deploy --dry-run: %v", r)
	}
	for _, node := range []string{"node-1", "node-2", "node-3"} {
		if !strings.Contains(r.Stdout, "-> "+node+" (new)") {
			t.Errorf("the dry run places no task on %s", node)
		}
	}
	if ls := c.must("node-1", "stack", "ls").Stdout; strings.Contains(ls, "web") {
		t.Fatalf("the dry run deployed:\n%s", ls)
	}

	// Deployed through a follower, read through the leader.
	r = c.must("node-2", "stack", "deploy", "-c", "../../examples/web/compose.yaml", "web")
	if !strings.Contains(r.Stdout, "Creating service web_nginx") || !strings.Contains(r.Stdout, "Creating network web_default") {
		t.Fatalf("deploy output:\n%s", r.Stdout)
	}
	var ls clustertest.Result
	c.eventually(30*time.Second, func() error {
		ls = c.must("node-1", "service", "ls")
		if !strings.Contains(ls.Stdout, "3/5 (max 1 per node)") {
			return fmt.Errorf("service ls:\n%s", ls.Stdout)
		}
		return nil
	})
	t.Logf("service ls:\n%s", ls.Stdout)
	for _, col := range []string{"ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS", "web_nginx", "replicated", "nginx:1.27-alpine", "*:8080->80/tcp"} {
		if !strings.Contains(ls.Stdout, col) {
			t.Errorf("service ls lacks %q", col)
		}
	}
	ps := c.must("node-1", "service", "ps", "--no-trunc", "web_nginx")
	t.Logf("service ps web_nginx:\n%s", ps.Stdout)
	const reason = `"no suitable node (max replicas per node limit reached on 3 nodes)"`
	pending, running := 0, 0
	for _, line := range strings.Split(ps.Stdout, "\n") {
		switch {
		case strings.Contains(line, "Pending") && strings.Contains(line, reason):
			pending++
		case strings.Contains(line, " Running ") && strings.Contains(line, "node-"):
			running++
		}
	}
	if pending != 2 || running != 3 {
		t.Fatalf("service ps shows %d pending with the reason and %d running, want 2 and 3:\n%s", pending, running, ps.Stdout)
	}
	c.fails("node-3", "", "this node is a worker", "service", "ls")

	// Against the live cluster the same files differ in nothing (exit 0); the
	// preview still names the two replicas that cannot be placed.
	var plan struct {
		Changed   bool                    `json:"changed"`
		Placement []*api.ServicePlacement `json:"placement"`
		Settled   bool                    `json:"settled"`
	}
	if err := json.Unmarshal([]byte(c.must("node-1", "diff", "-c", "../../examples/web/compose.yaml", "--stack", "web", "-o", "json").Stdout), &plan); err != nil {
		t.Fatal(err)
	}
	if plan.Changed || !plan.Settled || len(plan.Placement) != 1 || len(plan.Placement[0].Tasks) != 0 ||
		len(plan.Placement[0].Unplaced) != 1 || plan.Placement[0].Unplaced[0].Count != 2 {
		t.Fatalf("diff -c --stack web -o json of the deployed files: %+v", plan)
	}
	var svcs []*api.ServiceStatus
	if err := json.Unmarshal([]byte(c.must("node-2", "service", "inspect", "web_nginx").Stdout), &svcs); err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 1 || svcs[0].Running != 3 || svcs[0].Desired != 5 || len(svcs[0].Pending) != 1 || svcs[0].Pending[0].Tasks != 2 {
		t.Fatalf("service inspect web_nginx: %+v", svcs)
	}

	// A service added to web converges and the deploy that waits for it returns, although
	// web_nginx, which the deploy left alone, stays 3/5 for good.
	extra := filepath.Join(t.TempDir(), "extra.yaml")
	if err := os.WriteFile(extra, []byte("services:\n  app:\n    image: busybox\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = c.run("node-1", "stack", "deploy", "-c", "../../examples/web/compose.yaml", "-c", extra, "--detach=false", "--timeout", "20s", "web")
	if r.Code != 0 || !strings.Contains(r.Stdout, "Creating service web_app") || !strings.Contains(r.Stdout, "Stack web converged.") ||
		strings.Contains(r.Stdout, "web_nginx") {
		t.Fatalf("deploy --detach=false of a stack with a service that stays pending: %v", r)
	}

	// A stack that converges, waited for; its secret's content appears nowhere.
	secret, err := os.ReadFile("../../examples/secrets/api_token.txt")
	if err != nil {
		t.Fatal(err)
	}
	r = c.must("node-1", "stack", "deploy", "-c", "../../examples/secrets/compose.yaml", "--detach=false", "--timeout", "60s", "secrets")
	if !strings.Contains(r.Stdout, "Stack secrets converged.") || !strings.Contains(r.Stdout, "Creating secret secrets_api_token (version 1)") {
		t.Fatalf("deploy --detach=false:\n%s", r.Stdout)
	}
	inspect := c.must("node-2", "service", "inspect", "secrets_app")
	for name, out := range map[string]string{"deploy": r.Stdout, "inspect": inspect.Stdout} {
		if strings.Contains(out, strings.TrimSpace(string(secret))) {
			t.Errorf("the secret's content shows in the output of %s", name)
		}
	}
	// Deploying the same files again changes nothing.
	if r := c.must("node-2", "stack", "deploy", "-c", "../../examples/secrets/compose.yaml", "secrets"); !strings.Contains(r.Stdout, "Stack secrets is up to date.") {
		t.Errorf("second deploy:\n%s", r.Stdout)
	}

	c.must("node-1", "stack", "rm", "web", "secrets")
	c.eventually(30*time.Second, func() error {
		out := c.must("node-2", "stack", "ls").Stdout
		if strings.TrimSpace(out) != "NAME   SERVICES" {
			return fmt.Errorf("stack ls after rm:\n%s", out)
		}
		return nil
	})
	for _, name := range []string{"node-1", "node-2", "node-3"} {
		d := c.d(name)
		log, err := os.ReadFile(d.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(log), strings.TrimSpace(string(secret))) {
			t.Errorf("the secret's content is in the log of %s", name)
		}
	}
}
