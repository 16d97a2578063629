package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/internal/ctrtest"
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
// run to a daemon with a real agent: the push is applied, returns once what is left is
// stuck, with both reasons on its remote: lines, and the source says Degraded.
func TestPushStuckProcess(t *testing.T) {
	testenv.RequireCommand(t, "git", "the push test runs the real git command line")
	addr := testenv.RequireContainerd(t)
	var b [4]byte
	rand.Read(b[:])
	ns := "berth-e2e-" + hex.EncodeToString(b[:])
	ctr, err := ctrtest.New(addr, ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := ctr.RemoveNamespace(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		ctr.Close()
	})
	c := newProcClusterArgs(t, []string{"--heartbeat-period", "500ms", "--apply-timeout", "5s", "--log-level", "debug",
		"--containerd", addr, "--containerd-namespace", ns}, "node-1")
	c.start("node-1")
	t.Cleanup(func() { c.run("node-1", "leave", "--force") })
	c.must("node-1", "init")
	c.must("node-1", "source", "add", "apps", "--push")

	repo := gittest.New(t)
	repo.Write(map[string]string{"web/compose.yaml": stuckStack})
	repo.Commit("stuck")
	gitCmd := pushRemote(t, c, "node-1", "apps", repo.Dir)

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
	for _, want := range []string{"applied", "web_nowhere", "node.labels.zone", "web_pull", "127.0.0.1:1/berth/missing:1"} {
		if !slices.ContainsFunc(strings.Split(out, "\n"), func(l string) bool { return strings.HasPrefix(l, "remote: ") && strings.Contains(l, want) }) {
			t.Errorf("git push output has no remote: line with %q", want)
		}
	}
	if ls := c.must("node-1", "source", "ls").Stdout; !strings.Contains(ls, "Degraded") {
		t.Errorf("source ls after a push that cannot fully run:\n%s", ls)
	}
}
