package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Lost quorum: of 3 managers, 2 are gone for good. `swarm init --force-new-cluster` on
// the third makes it the only manager with everything it had, and two fresh managers
// join it.
func TestForceNewClusterProcesses(t *testing.T) {
	c := newProcCluster(t, "node-1", "node-2", "node-3", "node-4", "node-5")
	c.start("node-1", "node-2", "node-3")
	c.initCluster("node-1", []string{"node-2", "node-3"}, nil)
	compose := twoReplicaStack(t, t.TempDir())
	c.must("node-1", "stack", "deploy", "-c", compose, "web")
	c.must("node-1", "secret", "create", "db_pw", compose)
	c.eventually(20*time.Second, func() error { return serviceRuns(c, "web_app", "2/2") })

	for _, gone := range []string{"node-2", "node-3"} {
		if err := c.d(gone).Kill(); err != nil {
			t.Fatal(err)
		}
	}
	// No quorum: writes fail, and init without the flag says the node is in a cluster.
	c.fails("node-1", "", "no leader", "service", "scale", "web_app=3")
	c.fails("node-1", "", "already", "swarm", "init")

	r := c.must("node-1", "swarm", "init", "--force-new-cluster")
	if !strings.Contains(r.Stdout, "Cluster recovered") {
		t.Fatalf("force-new-cluster:\n%s", r.Stdout)
	}
	token := regexp.MustCompile(`berth join --token (\S+) (\S+)`).FindAllStringSubmatch(r.Stdout, -1)
	if len(token) != 2 {
		t.Fatalf("force-new-cluster printed %d join commands, want 2:\n%s", len(token), r.Stdout)
	}
	managerToken, addr := token[1][1], token[1][2]
	// Everything the survivor had is there, and it takes writes alone.
	c.must("node-1", "service", "scale", "web_app=3")
	c.eventually(20*time.Second, func() error { return serviceRuns(c, "web_app", "3/3") })
	if out := c.must("node-1", "secret", "ls", "-q").Stdout; strings.TrimSpace(out) == "" {
		t.Error("the secret is gone after the recovery")
	}

	c.start("node-4", "node-5")
	for _, name := range []string{"node-4", "node-5"} {
		if r := c.must(name, "join", "--token", managerToken, addr); !strings.Contains(r.Stdout, "as a manager") {
			t.Fatalf("join of %s: %v", name, r)
		}
	}
	c.eventually(30*time.Second, func() error {
		rows, err := parseNodeLs(c.must("node-1", "node", "ls").Stdout)
		if err != nil {
			return err
		}
		want := map[string]string{"node-1": "Leader", "node-4": "Reachable", "node-5": "Reachable"}
		for host, status := range want {
			if rows[host].manager != status {
				return fmt.Errorf("node ls: %s is %q, want %s: %+v", host, rows[host].manager, status, rows)
			}
		}
		if info := c.info("node-4"); info.Managers != 3 {
			return fmt.Errorf("raft counts %d managers, want 3 (node-1, node-4, node-5)", info.Managers)
		}
		return nil
	})
	// The new managers have the state: a write through one of them lands.
	c.must("node-5", "service", "scale", "web_app=1")
	c.eventually(20*time.Second, func() error { return serviceRuns(c, "web_app", "1/1") })
}
