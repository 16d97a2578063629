package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/internal/gittest"
	"github.com/berthd/berth/internal/testenv"
)

// stuckStack cannot fully run: nowhere's constraint matches no node, and pull's image
// is on a registry that refuses connections (the pull fails at once).
const stuckStack = `services:
  nowhere:
    image: berth.test/busybox:1
    deploy:
      placement:
        constraints: [node.labels.zone == nowhere]
  pull:
    image: 127.0.0.1:1/berth/missing:1
`

// TestPushStuckProcess pushes, with the real git, a stack whose services cannot all
// run to a daemon with a real agent: the push shows the placement preview, is applied,
// returns once what is left is stuck, with both reasons on its remote: lines, and the
// source says Degraded.
func TestPushStuckProcess(t *testing.T) {
	testenv.RequireCommand(t, "git", "the push test runs the real git command line")
	addr, ns, _ := containerdNamespace(t)
	c := newProcClusterArgs(t, []string{"--heartbeat-period", "500ms", "--apply-timeout", "5s", "--log-level", "debug",
		"--containerd", addr, "--containerd-namespace", ns}, "node-1")
	c.start("node-1")
	t.Cleanup(func() { c.run("node-1", "leave", "--force") })
	c.must("node-1", "init")
	c.must("node-1", "source", "add", "apps", "--push")

	repo := gittest.New(t)
	repo.Write(map[string]string{"web/compose.yaml": stuckStack})
	repo.Commit("stuck")
	gitCmd := pushRemote(t, c, "node-1", "apps", "berth", repo.Dir)

	// A guard against a hang, not a timing assertion: the push's own bound is 2 minutes.
	ctx, cancel := context.WithTimeout(c.ctx, 90*time.Second)
	defer cancel()
	out, err := gitCmd(ctx, "push", "berth", "main")
	t.Logf("git push:\n%s", out)
	if ctx.Err() != nil {
		t.Fatalf("git push did not return within 90s")
	}
	if err != nil {
		t.Fatalf("git push of an applied revision: %v", err)
	}
	// The placement preview comes before the revision is applied: where each new
	// task lands, and what cannot be placed and why.
	for _, want := range []string{"berth: placement", "web_pull.1 -> node-1 (new)", "1 task cannot be placed: ",
		"applied", "web_nowhere", "node.labels.zone", "web_pull", "127.0.0.1:1/berth/missing:1"} {
		if !slices.ContainsFunc(strings.Split(out, "\n"), func(l string) bool { return strings.HasPrefix(l, "remote: ") && strings.Contains(l, want) }) {
			t.Errorf("git push output has no remote: line with %q", want)
		}
	}
	if ls := c.must("node-1", "source", "ls").Stdout; !strings.Contains(ls, "Degraded") {
		t.Errorf("source ls after a push that cannot fully run:\n%s", ls)
	}
}

// TestPushSurvivesLeaderLossProcesses pushes A, kills the leader with SIGKILL and pushes
// B to the new one with the real git: B is a fast-forward of A, since every manager
// holds each acknowledged push. The old leader comes back and leads again; A is never
// applied after B, every manager serves B, and the cluster runs B.
func TestPushSurvivesLeaderLossProcesses(t *testing.T) {
	testenv.RequireCommand(t, "git", "the push test runs the real git command line")
	names := []string{"node-1", "node-2", "node-3"}
	c := newProcCluster(t, names...)
	c.start(names...)
	c.initCluster("node-1", names[1:], nil)
	c.must("node-1", "source", "add", "apps", "--push")
	ids := map[string]string{}
	for _, n := range names {
		ids[c.info(n).NodeID] = n
	}
	// leader waits until the managers that run agree on a leader other than not.
	leader := func(not string) string {
		t.Helper()
		var l string
		c.eventually(30*time.Second, func() error {
			l = ""
			for _, n := range names {
				if !c.d(n).Running() {
					continue
				}
				info := c.info(n)
				if info.Leader == nil || ids[info.Leader.NodeID] == not || (l != "" && ids[info.Leader.NodeID] != l) {
					return fmt.Errorf("%s sees leader %v", n, info.Leader)
				}
				l = ids[info.Leader.NodeID]
			}
			return nil
		})
		return l
	}

	repo := gittest.New(t)
	var git func(ctx context.Context, args ...string) (string, error)
	for _, n := range names {
		git = pushRemote(t, c, n, "apps", n, repo.Dir) // one remote per manager, named after it
	}
	push := func(remote string, replicas int) (string, string) {
		t.Helper()
		repo.Write(map[string]string{"web/compose.yaml": fmt.Sprintf("services:\n  app:\n    image: nginx:1\n    deploy:\n      replicas: %d\n", replicas)})
		rev := repo.Commit(fmt.Sprintf("%d replicas", replicas)).String()
		out, err := git(c.ctx, "push", remote, "main")
		t.Logf("git push %s (%s):\n%s", remote, rev[:7], out)
		if err != nil {
			t.Fatalf("git push %s: %v", remote, err)
		}
		return rev, out
	}

	first := leader("")
	a, _ := push(first, 1)
	if err := c.d(first).Kill(); err != nil {
		t.Fatal(err)
	}
	second := leader(first)
	b, out := push(second, 2)
	if !strings.Contains(out, a[:7]+".."+b[:7]) || strings.Contains(out, "[new branch]") {
		t.Fatalf("the push of B to the new leader is not a fast-forward of A:\n%s", out)
	}

	// The old leader rejoins; the leader is killed and restarted until it leads again
	// (each election is a coin toss between it and the third manager).
	c.start(first)
	for i, cur := 0, leader(""); cur != first; i, cur = i+1, leader("") {
		if i == 8 {
			t.Logf("%s did not lead again after %d elections; checking with %s leading", first, i, cur)
			break
		}
		if err := c.d(cur).Kill(); err != nil {
			t.Fatal(err)
		}
		leader(cur)
		c.start(cur)
	}
	for _, n := range names {
		c.eventually(30*time.Second, func() error {
			out, err := git(c.ctx, "ls-remote", n)
			if err != nil || !strings.Contains(out, b+"\trefs/heads/main") {
				return fmt.Errorf("git ls-remote %s: %v\n%s", n, err, out)
			}
			return nil
		})
	}
	c.eventually(30*time.Second, func() error {
		if ls := c.must(first, "service", "ls").Stdout; !strings.Contains(ls, "2/2") {
			return fmt.Errorf("service ls on the old leader:\n%s", ls)
		}
		return nil
	})
	var src api.SourceInfo
	if err := json.Unmarshal([]byte(c.must(first, "source", "inspect", "apps").Stdout), &src); err != nil {
		t.Fatal(err)
	}
	seenB := false
	for _, rec := range src.History {
		seenB = seenB || rec.Revision == b
		if seenB && rec.Revision == a {
			t.Errorf("source history applies A again after B: %+v", src.History)
		}
	}
	if src.LastAppliedRevision != b {
		t.Errorf("the source's last applied revision is %s, want B %s", src.LastAppliedRevision, b)
	}

	// A forced push that does not descend from B is refused before it is stored.
	if out, err := git(c.ctx, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--amend", "-m", "B rewritten"); err != nil {
		t.Fatalf("git commit --amend: %v\n%s", err, out)
	}
	out, err := git(c.ctx, "push", "--force", first, "main")
	if err == nil || !strings.Contains(out, "[remote rejected]") || !strings.Contains(out, "fast-forwards only") {
		t.Errorf("a forced push of a rewritten B: err %v\n%s", err, out)
	}
	if out, _ := git(c.ctx, "ls-remote", first); !strings.Contains(out, b+"\trefs/heads/main") {
		t.Errorf("after a refused forced push, ls-remote:\n%s", out)
	}
}
