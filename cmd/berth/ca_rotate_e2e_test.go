package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/ca"
)

// nodeCert reads the certificate a daemon uses now (its data dir's certs/node.pem).
func nodeCert(c *procCluster, name string) (*x509.Certificate, error) {
	b, err := os.ReadFile(filepath.Join(c.d(name).DataDir, "certs", "node.pem"))
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: node.pem holds no PEM", name)
	}
	return x509.ParseCertificate(block.Bytes)
}

func allReady(c *procCluster, via string, names ...string) error {
	rows, err := parseNodeLs(c.must(via, "node", "ls").Stdout)
	if err != nil {
		return err
	}
	for _, name := range names {
		if rows[name].status != "Ready" {
			return fmt.Errorf("node ls: %s is %q, want Ready: %+v", name, rows[name].status, rows)
		}
	}
	return nil
}

// With certificates of a minute, every node renews its own before it expires, with a
// new key and serial, and stays Ready: the new certificate is used without a restart.
func TestCertRenewalProcesses(t *testing.T) {
	c := newProcCluster(t, "node-1", "node-2")
	c.start("node-1", "node-2")
	c.initCluster("node-1", nil, []string{"node-2"}, "--cert-expiry", "1m")
	first := map[string]*x509.Certificate{}
	for _, name := range []string{"node-1", "node-2"} {
		cert, err := nodeCert(c, name)
		if err != nil {
			t.Fatal(err)
		}
		if life := cert.NotAfter.Sub(cert.NotBefore); life > 2*time.Hour {
			t.Fatalf("%s: certificate valid for %s, --cert-expiry 1m asked for a minute (plus the backdated hour)", name, life)
		}
		first[name] = cert
	}
	c.eventually(90*time.Second, func() error {
		for name, old := range first {
			cert, err := nodeCert(c, name)
			if err != nil {
				return err
			}
			if cert.SerialNumber.Cmp(old.SerialNumber) == 0 || !cert.NotAfter.After(old.NotAfter) {
				return fmt.Errorf("%s still has certificate %x until %s", name, old.SerialNumber, old.NotAfter)
			}
		}
		return nil
	})
	// Past the first certificates' expiry, the cluster still works on the new ones.
	for _, old := range first {
		time.Sleep(time.Until(old.NotAfter.Add(time.Second)))
	}
	c.eventually(10*time.Second, func() error { return allReady(c, "node-1", "node-1", "node-2") })
	c.must("node-1", "service", "create", "--name", "web", "--replicas", "2", "busybox")
	c.eventually(20*time.Second, func() error { return serviceRuns(c, "web", "2/2") })
}

// `swarm ca --rotate` moves every node of 2 managers and a worker to certificates of
// a new root, while the cluster keeps working; afterwards the cluster trusts only the
// new root, and a node joins with the new token.
func TestCARotationProcesses(t *testing.T) {
	c := newProcCluster(t, "node-1", "node-2", "node-3", "node-4")
	c.start("node-1", "node-2", "node-3")
	c.initCluster("node-1", []string{"node-2"}, []string{"node-3"})
	c.must("node-1", "service", "create", "--name", "web", "--replicas", "2", "busybox")
	c.eventually(20*time.Second, func() error { return serviceRuns(c, "web", "2/2") })
	oldToken := strings.TrimSpace(c.must("node-1", "join-token", "-q", "worker").Stdout)

	r := c.must("node-2", "swarm", "ca", "--rotate")
	if !strings.Contains(r.Stderr, "Progress: 3/3 nodes rotated") {
		t.Fatalf("rotate shows no final progress:\n%s", r.Stderr)
	}
	root, err := ca.ParseCACert([]byte(r.Stdout))
	if err != nil {
		t.Fatalf("rotate printed no root CA: %v\n%s", err, r.Stdout)
	}
	if got := strings.TrimSpace(c.must("node-1", "swarm", "ca").Stdout); got != strings.TrimSpace(r.Stdout) {
		t.Fatalf("swarm ca after the rotation prints another root:\n%s", got)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	nodes := []string{"node-1", "node-2", "node-3"}
	// The rotation is over: each node drops the previous root and the cross-signed
	// certificate, and its certificate verifies against the new root alone.
	c.eventually(30*time.Second, func() error {
		for _, name := range nodes {
			if _, err := os.Stat(filepath.Join(c.d(name).DataDir, "certs", "trusted-ca.pem")); !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("%s still trusts the previous root (%v)", name, err)
			}
			cert, err := nodeCert(c, name)
			if err != nil {
				return err
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
		}
		return nil
	})
	c.eventually(10*time.Second, func() error { return allReady(c, "node-1", nodes...) })
	c.must("node-2", "service", "scale", "web=3")
	c.eventually(20*time.Second, func() error { return serviceRuns(c, "web", "3/3") })

	token := strings.TrimSpace(c.must("node-1", "join-token", "-q", "worker").Stdout)
	if !strings.Contains(token, "-"+ca.Digest(root)+"-") || token == oldToken {
		t.Fatalf("worker token %s does not pin the new root %s", token, ca.Digest(root))
	}
	c.start("node-4")
	c.fails("node-4", "", "token expects", "join", "--token", oldToken, c.d("node-1").Addr)
	c.must("node-4", "join", "--token", token, c.d("node-1").Addr)
	c.eventually(20*time.Second, func() error { return allReady(c, "node-1", append(nodes, "node-4")...) })
	events := c.must("node-1", "events", "--since", "1h", "--until", "0s", "--filter", "type=cluster", "--format", "{{.Action}}").Stdout
	if !strings.Contains(events, "ca-rotate\n") || !strings.Contains(events, "ca-rotated\n") {
		t.Errorf("events --filter type=cluster:\n%s", events)
	}
}
