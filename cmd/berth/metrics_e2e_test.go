package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/internal/clustertest"
)

// A daemon started with --metrics-addr serves Prometheus text there: the Go runtime's
// metrics at once, the manager's once it is one.
func TestMetricsProcesses(t *testing.T) {
	ports, err := clustertest.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	c := newProcClusterArgs(t, append(slices.Clone(testDaemonArgs), "--metrics-addr", addr), "node-1")
	c.start("node-1")
	scrape := func() (string, error) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("GET /metrics: %s: %s", resp.Status, b)
		}
		return string(b), err
	}
	before, err := scrape()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(before, "go_goroutines ") || strings.Contains(before, "berth_raft_leader") {
		t.Fatalf("before init: want the runtime's metrics and no manager's:\n%s", before)
	}
	c.initCluster("node-1", nil, nil)
	compose := filepath.Join(t.TempDir(), "compose.yaml")
	if err := os.WriteFile(compose, []byte("services:\n  app:\n    image: busybox\n    deploy: {replicas: 2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.must("node-1", "stack", "deploy", "-c", compose, "web")
	c.eventually(20*time.Second, func() error {
		out, err := scrape()
		if err != nil {
			return err
		}
		for _, line := range []string{
			"berth_raft_leader 1",
			`berth_nodes{availability="active",role="manager",state="ready"} 1`,
			`berth_service_replicas_desired{service="web_app",stack="web"} 2`,
			`berth_service_replicas_running{service="web_app",stack="web"} 2`,
		} {
			if !strings.Contains(out, line+"\n") {
				return fmt.Errorf("no line %q in:\n%s", line, out)
			}
		}
		return nil
	})
}
