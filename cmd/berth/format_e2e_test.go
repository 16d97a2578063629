package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const formatStack = `services:
  web:
    image: busybox:1.36
    deploy:
      replicas: 2
      labels:
        tier: front
  mon:
    image: busybox:1.36
    deploy:
      mode: global
`

// TestFormatsAndFiltersProcesses runs templates, json rows and filters through a
// real daemon (one node, simulated agent): what a script written for docker types.
func TestFormatsAndFiltersProcesses(t *testing.T) {
	c := newProcCluster(t, "node-1")
	c.start("node-1")
	c.initCluster("node-1", nil, nil)
	compose := filepath.Join(t.TempDir(), "compose.yaml")
	if err := os.WriteFile(compose, []byte(formatStack), 0o644); err != nil {
		t.Fatal(err)
	}
	c.must("node-1", "stack", "deploy", "-c", compose, "--detach=false", "--timeout", "30s", "fmt")

	ls := c.must("node-1", "service", "ls", "--filter", "mode=global", "--format", "{{.Name}} {{.Mode}} {{.Replicas}}").Stdout
	if ls != "fmt_mon global 1/1\n" {
		t.Errorf("service ls --filter mode=global --format: %q", ls)
	}
	rows := c.must("node-1", "service", "ls", "--filter", "label=tier=front", "--format", "json").Stdout
	var row map[string]string
	if err := json.Unmarshal([]byte(rows), &row); err != nil || row["Name"] != "fmt_web" || row["Replicas"] != "2/2" ||
		row["Mode"] != "replicated" || row["Image"] != "busybox:1.36" || len(row["ID"]) != 12 {
		t.Errorf("service ls --filter label=tier=front --format json: %q (%v)", rows, err)
	}

	ps := c.must("node-1", "service", "ps", "-f", "desired-state=running", "-f", "node=node-1",
		"--format", "{{.Name}} {{.Node}} {{.DesiredState}}", "fmt_web").Stdout
	if ps != "fmt_web.1 node-1 Running\nfmt_web.2 node-1 Running\n" {
		t.Errorf("service ps --filter --format: %q", ps)
	}
	table := c.must("node-1", "stack", "ps", "--format", `table {{.Name}}\t{{.DesiredState}}`, "fmt").Stdout
	if !strings.HasPrefix(table, "NAME ") || !strings.Contains(table, "DESIRED STATE\n") || strings.Count(table, "\n") != 4 {
		t.Errorf("stack ps --format table: %q", table)
	}
	for _, id := range strings.Fields(c.must("node-1", "stack", "ps", "-q", "fmt").Stdout) {
		if len(id) != 12 {
			t.Errorf("stack ps -q prints %q, want 12-character IDs", id)
		}
	}

	if got := c.must("node-1", "node", "ls", "--filter", "role=manager", "--format", "{{.Hostname}} {{.Self}}").Stdout; got != "node-1 true\n" {
		t.Errorf("node ls --filter role=manager --format: %q", got)
	}
	if got := c.must("node-1", "service", "inspect", "-f", "{{.Spec.Image}} {{index .Spec.Deploy.Labels \"tier\"}}", "fmt_web").Stdout; got != "busybox:1.36 front\n" {
		t.Errorf("service inspect -f: %q", got)
	}
	if got := c.must("node-1", "info", "--format", "{{.Hostname}} {{.Role}}").Stdout; got != "node-1 manager\n" {
		t.Errorf("info --format: %q", got)
	}
	if r := c.run("node-1", "service", "ps", "--filter", "colour=red", "fmt_web"); r.Code == 0 ||
		!strings.Contains(r.Stderr, "invalid filter 'colour': use desired-state, id, name, node") {
		t.Errorf("an unknown filter key: %v", r)
	}
}
