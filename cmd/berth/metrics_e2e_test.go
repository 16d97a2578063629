package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/ca"
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
	scrape := func() (string, error) { return get(c.ctx, http.DefaultClient, "http://"+addr+"/metrics") }
	before, err := scrape()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(before, "go_goroutines ") || strings.Contains(before, "berth_raft_leader") {
		t.Fatalf("before init: want the runtime's metrics and no manager's:\n%s", before)
	}
	c.initCluster("node-1", nil, nil)
	compose := twoReplicaStack(t, t.TempDir())
	c.must("node-1", "stack", "deploy", "-c", compose, "web")
	// The manager's TCP port serves them to an operator's client certificate too.
	certs := filepath.Join(t.TempDir(), "certs")
	c.must("node-1", "ca", "client-cert", "--out", certs, "--ttl", "1h")
	tlsScrape, anonymous := tlsClients(t, certs)
	remote := func() (string, error) { return get(c.ctx, tlsScrape, "https://"+c.d("node-1").Addr+"/metrics") }
	if _, err := get(c.ctx, anonymous, "https://"+c.d("node-1").Addr+"/metrics"); err == nil {
		t.Fatal("the TCP port served metrics to a client without a certificate")
	}
	c.eventually(20*time.Second, func() error {
		out, err := scrape()
		if err != nil {
			return err
		}
		if out, err = remote(); err != nil || !strings.Contains(out, "berth_raft_leader 1\n") {
			return fmt.Errorf("over TLS with an admin certificate: %v\n%s", err, out)
		}
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
		// Timings and counters: present once the writes and passes they count happened.
		for _, prefix := range []string{"berth_raft_apply_duration_seconds_count ", `berth_reconciler_passes_total{result="ok"} `,
			"berth_reconciler_pass_duration_seconds_count "} {
			if !strings.Contains(out, "\n"+prefix) || strings.Contains(out, "\n"+prefix+"0\n") {
				return fmt.Errorf("no %s above 0 in:\n%s", prefix, out)
			}
		}
		return nil
	})
}

// tlsClients are HTTPS clients of a manager's port: with the client certificate in
// dir (as `berth ca client-cert` writes it), and without one.
func tlsClients(t *testing.T, dir string) (withCert, without *http.Client) {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("ca.pem holds no certificate")
	}
	client := func(certs []tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: roots, Certificates: certs, ServerName: ca.ManagerServerName, MinVersion: tls.VersionTLS13}}}
	}
	return client([]tls.Certificate{cert}), client(nil)
}

// agentMetricsAtLeast reads a node's metrics on its local socket and checks that each
// series named (as the text format writes it) has at least the value given.
func agentMetricsAtLeast(t *testing.T, c *procCluster, node string, want map[string]float64) {
	t.Helper()
	sock := c.d(node).Socket
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	out, err := get(c.ctx, client, "http://berth/metrics")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, line := range strings.Split(out, "\n") {
		if name, value, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(line, "#") {
			got[name], _ = strconv.ParseFloat(value, 64)
		}
	}
	for series, least := range want {
		if got[series] < least {
			t.Errorf("metrics of %s: %s = %v, want %v or more", node, series, got[series], least)
		}
	}
}

// twoReplicaStack writes, in dir, a stack of one service of 2 replicas of busybox (the
// process tests' simulated agents run it without an image), and returns its path.
func twoReplicaStack(t *testing.T, dir string) string {
	t.Helper()
	compose := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(compose, []byte("services:\n  app:\n    image: busybox\n    deploy: {replicas: 2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return compose
}
