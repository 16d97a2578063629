package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/internal/gittest"
	"github.com/berthd/berth/internal/testenv"
)

// lineWithAll reports whether a line of out contains every part.
func lineWithAll(out string, parts ...string) bool {
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
	for _, node := range []string{"node-1", "node-2", "node-3"} {
		c.eventually(20*time.Second, func() error {
			out, err := events(node)
			if err != nil {
				return err
			}
			if !lineWithAll(out, " service create ", "name=web_app") || !lineWithAll(out, " task running ", "service=web_app") || !lineWithAll(out, " node join ", "name=node-2") ||
				!lineWithAll(out, " node leader ", "name=node-1") {
				return fmt.Errorf("events on %s lack the deploy:\n%s", node, out)
			}
			return nil
		})
	}
	if out, _ := events("node-2", "--filter", "type=service"); lineWithAll(out, " task ") || !lineWithAll(out, " service create ") {
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
	// The survivors elected a new leader, which recorded its leadership.
	var elected string
	c.eventually(30*time.Second, func() error {
		l := c.info(alive).Leader
		if l == nil || l.NodeID == leader.NodeID {
			return fmt.Errorf("%s sees leader %v", alive, l)
		}
		for _, name := range []string{"node-1", "node-2", "node-3"} {
			if name != dead && c.info(name).NodeID == l.NodeID {
				elected = name
			}
		}
		return nil
	})
	c.eventually(30*time.Second, func() error {
		out, err := events(alive, "--format", "{{.Type}} {{.Action}} {{.Name}}")
		if err != nil {
			return err
		}
		for _, want := range []string{"service create web_app", "service update web_app", "node down " + dead, "node leader " + dead, "node leader " + elected} {
			if !strings.Contains(out, want+"\n") {
				return fmt.Errorf("events on %s after %s died lack %q:\n%s", alive, dead, want, out)
			}
		}
		return nil
	})
}

// A push accepted and a push refused are source events, the refusal with the first
// line of its reason, from the record the leader committed.
func TestPushEventsProcess(t *testing.T) {
	testenv.RequireCommand(t, "git", "the push test runs the real git command line")
	c := newProcCluster(t, "node-1")
	c.start("node-1")
	c.must("node-1", "init")
	c.must("node-1", "source", "add", "apps", "--push")
	repo := gittest.New(t)
	git := pushRemote(t, c, "node-1", "apps", "berth", repo.Dir)

	repo.Write(map[string]string{"web/compose.yaml": "services:\n  app:\n    image: nginx:1\n"})
	good := repo.Commit("web").String()
	if out, err := git(c.ctx, "push", "berth", "main"); err != nil {
		t.Fatalf("git push of a valid stack: %v\n%s", err, out)
	}
	repo.Write(map[string]string{"web/compose.yaml": "services:\n  app:\n    image: [nginx\n"})
	bad := repo.Commit("broken web").String()
	if out, err := git(c.ctx, "push", "berth", "main"); err == nil {
		t.Fatalf("git push of a broken compose file was accepted:\n%s", out)
	}
	c.eventually(20*time.Second, func() error {
		r := c.run("node-1", "events", "--since", "1h", "--until", "0s", "--filter", "type=source")
		if r.Code != 0 {
			return fmt.Errorf("events: %v", r)
		}
		if !lineWithAll(r.Stdout, " source push apps ", "revision="+good) || !lineWithAll(r.Stdout, " source push-rejected apps ", "revision="+bad, "reason=revision "+bad[:7]+": ") {
			return fmt.Errorf("source events lack the push of %s and the refusal of %s:\n%s", good[:7], bad[:7], r.Stdout)
		}
		return nil
	})
}
