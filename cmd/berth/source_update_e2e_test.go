package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/internal/gittest"
)

// TestSourceUpdateProcesses changes a source's path, interval and self-heal in place:
// the source syncs its new folder at once and prunes what the old one created; an
// interval under the minimum and an update with no flag are refused.
func TestSourceUpdateProcesses(t *testing.T) {
	c := newProcClusterArgs(t, testDaemonArgs, "node-1")
	c.start("node-1")
	c.initCluster("node-1", nil, nil)

	repo := gittest.New(t)
	repo.Write(map[string]string{
		"stacks/web/compose.yaml": "services:\n  app:\n    image: nginx:1\n",
		"other/api/compose.yaml":  "services:\n  app:\n    image: api:1\n",
	})
	repo.Commit("two folders")
	c.must("node-1", "source", "add", "up", "--url", "file://"+repo.Dir, "--path", "stacks", "--interval", "0")
	c.must("node-1", "source", "sync", "up")
	services := func(want, gone string) func() error {
		return func() error {
			out := c.must("node-1", "service", "ls").Stdout
			if !strings.Contains(out, want) || strings.Contains(out, gone) {
				return fmt.Errorf("service ls, want %s and no %s:\n%s", want, gone, out)
			}
			return nil
		}
	}
	c.eventually(20*time.Second, services("web_app", "api_app"))

	c.must("node-1", "source", "update", "up", "--path", "other", "--interval", "30s", "--self-heal")
	c.eventually(20*time.Second, services("api_app", "web_app"))
	out := c.must("node-1", "source", "inspect", "up").Stdout
	for _, want := range []string{`"path": "other"`, `"self_heal": true`, `"prune": true`, `"url": "file://` + repo.Dir} {
		if !strings.Contains(out, want) {
			t.Fatalf("source inspect after update lacks %s:\n%s", want, out)
		}
	}

	c.fails("node-1", "", "--interval 1s is shorter than 10s", "source", "update", "up", "--interval", "1s")
	c.fails("node-1", "", "nothing to update", "source", "update", "up")
	c.fails("node-1", "", "no such source: nosuch", "source", "update", "nosuch", "--branch", "x")
}
