package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/model"
)

// unpullableStack's image names a registry on a loopback port nothing listens on: the
// agent's pull fails at once, every time.
const unpullableStack = `
services:
  api:
    image: 127.0.0.1:1/berth-test/missing:1
    deploy:
      restart_policy: {delay: 1s}
`

// An image that cannot be pulled, on the real agent and containerd: the task is
// rejected with the pull's error and retried once per restart delay at most, backing
// off, rather than at the speed of the round trips; `service ps` folds the attempts
// into one row and `service ls` says why the service does not run.
func TestUnpullableImageProcess(t *testing.T) {
	c, _ := newDataPlaneNode(t)
	compose := filepath.Join(t.TempDir(), "compose.yaml")
	if err := os.WriteFile(compose, []byte(unpullableStack), 0o644); err != nil {
		t.Fatal(err)
	}
	c.must("node-1", "stack", "deploy", "-c", compose, "bad")
	deployed := time.Now()
	c.eventually(30*time.Second, func() error {
		for _, task := range taskInfos(t, c, "bad_api") {
			if task.Status.State == model.TaskRejected {
				return nil
			}
		}
		return fmt.Errorf("no task rejected yet")
	})
	// A window of 12 delays; the restart count lives in the newest task (the history
	// is trimmed to 5 per slot).
	time.Sleep(12 * time.Second)
	window := time.Since(deployed)
	tasks := taskInfos(t, c, "bad_api")
	restarts := tasks[0].Restarts.Count
	t.Logf("%v after the deploy: %d restarts", window.Round(time.Second), restarts)
	if limit := uint64(window/time.Second) + 1; restarts > limit {
		t.Errorf("%d restarts in %v with a 1s restart delay, want at most %d", restarts, window, limit)
	}
	ps := c.must("node-1", "service", "ps", "bad_api").Stdout
	if !strings.Contains(ps, "127.0.0.1:1/berth-test/missing:1") || !strings.Contains(ps, `" (x`) {
		t.Errorf("service ps shows the pull error on every attempt, want them folded:\n%s", ps)
	}
	if ls := c.must("node-1", "service", "ls").Stdout; !strings.Contains(ls, "bad_api: 1 failing: ") {
		t.Errorf("service ls does not say why bad_api does not run:\n%s", ls)
	}
}
