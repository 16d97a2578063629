package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// `berth events` tells what happened from any manager, and after the leader is
// killed the survivors still tell what it committed, then what comes next.
func TestEventsProcesses(t *testing.T) {
	c := newProcCluster(t, "node-1", "node-2", "node-3")
	c.start("node-1", "node-2", "node-3")
	c.initCluster("node-1", []string{"node-2", "node-3"}, nil)
	compose := twoReplicaStack(t, t.TempDir())
	c.must("node-1", "stack", "deploy", "-c", compose, "web")
	events := func(node string, args ...string) (string, error) {
		r := c.run(node, append([]string{"events", "--since", "1h", "--until", "0s"}, args...)...)
		if r.Code != 0 {
			return "", fmt.Errorf("events on %s: %v", node, r)
		}
		return r.Stdout, nil
	}
	has := func(out string, parts ...string) bool {
		for _, line := range strings.Split(out, "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return true
			}
		}
		return false
	}
	for _, node := range []string{"node-1", "node-2", "node-3"} {
		c.eventually(20*time.Second, func() error {
			out, err := events(node)
			if err != nil {
				return err
			}
			if !has(out, " service create ", "name=web_app") || !has(out, " task running ", "service=web_app") || !has(out, " node join ", "name=node-2") {
				return fmt.Errorf("events on %s lack the deploy:\n%s", node, out)
			}
			return nil
		})
	}
	if out, _ := events("node-2", "--filter", "type=service"); has(out, " task ") || !has(out, " service create ") {
		t.Errorf("--filter type=service:\n%s", out)
	}
	if r := c.run("node-2", "events", "--filter", "type=volume"); r.Code != 2 || !strings.Contains(r.Stderr, "invalid filter 'type=volume'") {
		t.Errorf("an unknown type: %v", r)
	}

	leader := c.info("node-1").Leader
	if leader == nil {
		t.Fatal("no leader")
	}
	var dead, alive string
	for _, name := range []string{"node-1", "node-2", "node-3"} {
		if c.info(name).NodeID == leader.NodeID {
			dead = name
		} else {
			alive = name
		}
	}
	if err := c.d(dead).Kill(); err != nil {
		t.Fatal(err)
	}
	c.eventually(30*time.Second, func() error {
		if r := c.run(alive, "service", "scale", "web_app=3"); r.Code != 0 {
			return fmt.Errorf("scale through %s: %v", alive, r)
		}
		return nil
	})
	c.eventually(30*time.Second, func() error {
		out, err := events(alive, "--format", "{{.Type}} {{.Action}} {{.Name}}")
		if err != nil {
			return err
		}
		for _, want := range []string{"service create web_app", "service update web_app", "node down " + dead} {
			if !strings.Contains(out, want+"\n") {
				return fmt.Errorf("events on %s after %s died lack %q:\n%s", alive, dead, want, out)
			}
		}
		return nil
	})
}
