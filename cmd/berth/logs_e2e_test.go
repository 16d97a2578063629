package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testimage"
)

// logsStack writes two lines a second apart, then waits.
const logsStack = `
services:
  talk:
    image: berth.test/busybox:logs
    command: ["sh", "-c", "echo first line && sleep 1 && echo second line && exec sleep 100000"]
    stop_grace_period: 1s
`

// service logs with Docker's flags, on the real agent: --raw, --no-trunc,
// --timestamps, --since and --until, and a task named instead of its service.
func TestServiceLogsProcess(t *testing.T) {
	c, _ := newDataPlaneNode(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "image.tar")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	err = testimage.Build(f, testimage.Options{Name: "berth.test/busybox:logs"})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	c.must("node-1", "image", "load", img)
	compose := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(compose, []byte(logsStack), 0o644); err != nil {
		t.Fatal(err)
	}
	c.must("node-1", "stack", "deploy", "-c", compose, "--detach=false", "--timeout", "90s", "lg")
	var raw string
	c.eventually(30*time.Second, func() error {
		raw = c.must("node-1", "service", "logs", "--raw", "lg_talk").Stdout
		if raw != "first line\nsecond line\n" {
			return fmt.Errorf("service logs --raw lg_talk = %q", raw)
		}
		return nil
	})
	task := taskInfos(t, c, "lg_talk")[0]

	// Docker's prefix, with the whole task ID under --no-trunc; a task by ID or name.
	want := fmt.Sprintf("lg_talk.1.%s@node-1    | first line\n", task.ID)
	for _, args := range [][]string{
		{"service", "logs", "--no-trunc", "lg_talk"},
		{"service", "logs", "--no-trunc", task.ID},
		{"service", "logs", "--no-trunc", "lg_talk.1"},
	} {
		if out := c.must("node-1", args...).Stdout; !strings.HasPrefix(out, want) || strings.Count(out, "\n") != 2 {
			t.Errorf("%s:\n%s", strings.Join(args, " "), out)
		}
	}
	c.fails("node-1", "", "no such service or task: nope", "service", "logs", "nope")

	// The lines' own times bound --since and --until.
	stamped := strings.Split(strings.TrimSpace(c.must("node-1", "service", "logs", "--raw", "-t", "lg_talk").Stdout), "\n")
	if len(stamped) != 2 {
		t.Fatalf("service logs -t: %q", stamped)
	}
	first, _, _ := strings.Cut(stamped[0], " ")
	second, _, _ := strings.Cut(stamped[1], " ")
	if out := c.must("node-1", "service", "logs", "--raw", "--until", first, "lg_talk").Stdout; out != "first line\n" {
		t.Errorf("--until %s: %q", first, out)
	}
	if out := c.must("node-1", "service", "logs", "--raw", "--since", second, "lg_talk").Stdout; out != "second line\n" {
		t.Errorf("--since %s: %q", second, out)
	}
	// A followed log ends once --until has passed.
	if out := c.must("node-1", "service", "logs", "--raw", "-f", "--until", second, "lg_talk").Stdout; out != raw {
		t.Errorf("-f --until %s: %q", second, out)
	}
}
