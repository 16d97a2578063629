package control_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/internal/memcluster"
	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/spec"
)

// caCluster is one manager whose cluster row has a real root CA and tokens, and
// two worker nodes.
func caCluster(t *testing.T) (*memcluster.Manager, *ca.RootCA) {
	t.Helper()
	_, m := oneManager(t)
	root, err := ca.NewRootCA("c1")
	if err != nil {
		t.Fatal(err)
	}
	w, _ := ca.NewJoinToken(root, ca.RoleWorker)
	mt, _ := ca.NewJoinToken(root, ca.RoleManager)
	ctx := context.Background()
	row := &model.Cluster{ID: "c1", RootCACert: string(root.CertPEM()), RootCAKey: string(root.KeyPEM()),
		JoinTokens: model.JoinTokens{Worker: w.Encode(), Manager: mt.Encode()}, Settings: model.DefaultSettings()}
	if _, err := m.Store.Apply(ctx, command.CmdClusterUpsert, row); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"n1", "n2"} {
		nd := memcluster.Node(id, nil)
		nd.CertRoot, nd.Addr = root.Digest(), "10.0.0.1:4270"
		if _, err := m.Store.Apply(ctx, command.CmdNodeUpsert, nd); err != nil {
			t.Fatal(err)
		}
	}
	return m, root
}

func renew(t *testing.T, m *memcluster.Manager, nodeID string) (*api.CertificateResponse, []*x509.Certificate) {
	t.Helper()
	_, csr, err := ca.NewNodeKeyAndCSR(nodeID)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := m.Control.RenewCertificate(context.Background(), ca.Identity{NodeID: nodeID, Role: ca.RoleWorker, ClusterID: "c1"}, &api.CertificateRequest{CSR: csr})
	if err != nil {
		t.Fatal(err)
	}
	var chain []*x509.Certificate
	for rest := []byte(resp.Certificate); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	return resp, chain
}

func verifies(leaf *x509.Certificate, inter []*x509.Certificate, root *x509.Certificate) bool {
	roots, pool := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	for _, c := range inter {
		pool.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err == nil
}

// A rotation: certificates issued meanwhile chain to the new root and, through the
// cross-signed one, to the old; the last node to renew ends it; then certificates
// come without the old root.
func TestRotateCA(t *testing.T) {
	m, oldRoot := caCluster(t)
	ctx := context.Background()
	resp, err := m.Control.UpdateCluster(ctx, &api.ClusterUpdateRequest{RotateCA: true})
	if err != nil {
		t.Fatal(err)
	}
	newRoot, err := ca.ParseCACert([]byte(resp.RootCACert))
	if err != nil || newRoot.Equal(oldRoot.Cert()) {
		t.Fatalf("rotation answered root %v, %v", newRoot, err)
	}
	if digest, rotating, err := m.Control.RootCA(); err != nil || !rotating || digest != ca.Digest(newRoot) {
		t.Fatalf("RootCA() = %s, %t, %v; want the new root, rotating", digest, rotating, err)
	}
	row, _ := m.Store.State().ReadTxn().Cluster(nil)
	tok, _ := ca.ParseJoinToken(row.JoinTokens.Worker)
	if tok.CADigest != ca.Digest(newRoot) {
		t.Fatalf("worker token pins %s, want the new root", tok.CADigest)
	}
	if _, err := m.Control.UpdateCluster(ctx, &api.ClusterUpdateRequest{RotateCA: true}); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("a second rotation while one is under way: %v, want ErrConflict", err)
	}

	r1, chain := renew(t, m, "n1")
	if len(chain) != 2 || !verifies(chain[0], nil, newRoot) || !verifies(chain[0], chain[1:], oldRoot.Cert()) {
		t.Fatalf("certificate during the rotation: %d certificates, must verify against the new root and, cross-signed, the old", len(chain))
	}
	if trusted, err := ca.ParseCACerts([]byte(r1.TrustedCACertificates)); err != nil || len(trusted) != 1 || !trusted[0].Equal(oldRoot.Cert()) {
		t.Fatalf("trusted during the rotation: %v, %v; want the old root", trusted, err)
	}
	renew(t, m, "n2")
	if _, rotating, _ := m.Control.RootCA(); rotating {
		t.Fatal("the rotation is still under way after every node renewed")
	}
	r1, chain = renew(t, m, "n1")
	if len(chain) != 1 || r1.TrustedCACertificates != "" {
		t.Fatalf("after the rotation: %d certificates, trusted %q; want the leaf alone", len(chain), r1.TrustedCACertificates)
	}
	nd, _ := m.Store.State().ReadTxn().Node(nil, "n1")
	if nd.CertRoot != ca.Digest(newRoot) || nd.CertSerial != chain[0].SerialNumber.Text(16) {
		t.Fatalf("node n1 records %s/%s", nd.CertSerial, nd.CertRoot)
	}
}

// opensslRoot is a root CA for cluster made by openssl, as an operator makes one for
// `swarm ca --rotate --ca-cert --ca-key`.
func opensslRoot(t *testing.T, subject string) (certPEM, keyPEM string) {
	t.Helper()
	testenv.RequireCommand(t, "openssl", "the operator's root CA is made with it")
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
		"-nodes", "-keyout", key, "-out", cert, "-days", "365", "-subj", subject,
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	c, _ := os.ReadFile(cert)
	k, _ := os.ReadFile(key)
	return string(c), string(k)
}

// `swarm ca --rotate --ca-cert --ca-key`: the rotation moves to the operator's root,
// which the server checks itself.
func TestRotateCAToTheOperatorsRoot(t *testing.T) {
	m, cur := caCluster(t)
	ctx := context.Background()
	other, _ := ca.NewRootCA("c2")
	certPEM, keyPEM := opensslRoot(t, "/O=c1/CN=ops root")
	_, otherKey := opensslRoot(t, "/O=c1/CN=another")
	refusals := []struct {
		name string
		req  api.ClusterUpdateRequest
		want string
	}{
		{"without --rotate", api.ClusterUpdateRequest{NewRootCACert: certPEM, NewRootCAKey: keyPEM}, "give them with --rotate"},
		{"a certificate without its key", api.ClusterUpdateRequest{RotateCA: true, NewRootCACert: certPEM}, "go together"},
		{"another cluster's root", api.ClusterUpdateRequest{RotateCA: true, NewRootCACert: string(other.CertPEM()), NewRootCAKey: string(other.KeyPEM())}, "names cluster c2"},
		{"the current root", api.ClusterUpdateRequest{RotateCA: true, NewRootCACert: string(cur.CertPEM()), NewRootCAKey: string(cur.KeyPEM())}, "current root CA"},
		{"another root's key", api.ClusterUpdateRequest{RotateCA: true, NewRootCACert: certPEM, NewRootCAKey: otherKey}, "does not belong"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			_, err := m.Control.UpdateCluster(ctx, &r.req)
			if !errors.Is(err, api.ErrBadRequest) || !strings.Contains(err.Error(), r.want) {
				t.Fatalf("err = %v, want a bad request saying %q", err, r.want)
			}
		})
	}
	if _, rotating, _ := m.Control.RootCA(); rotating {
		t.Fatal("a refused rotation started one")
	}
	resp, err := m.Control.UpdateCluster(ctx, &api.ClusterUpdateRequest{RotateCA: true, NewRootCACert: certPEM, NewRootCAKey: keyPEM})
	if err != nil {
		t.Fatal(err)
	}
	given, _ := ca.ParseCACert([]byte(certPEM))
	if answered, err := ca.ParseCACert([]byte(resp.RootCACert)); err != nil || !answered.Equal(given) {
		t.Fatalf("rotation answered root %v, %v; want the operator's", answered, err)
	}
	_, chain := renew(t, m, "n1")
	if !verifies(chain[0], nil, given) || !verifies(chain[0], chain[1:], cur.Cert()) {
		t.Fatal("a certificate issued during the rotation must verify against the operator's root and, cross-signed, the old")
	}
}

func TestCertExpiry(t *testing.T) {
	m, _ := caCluster(t)
	ctx := context.Background()
	for _, bad := range []time.Duration{30 * time.Second, -time.Hour, 0} {
		d := spec.Duration(bad)
		if _, err := m.Control.UpdateCluster(ctx, &api.ClusterUpdateRequest{CertExpiry: &d}); !errors.Is(err, api.ErrBadRequest) {
			t.Errorf("--cert-expiry %s: %v, want a bad request", bad, err)
		}
	}
	d := spec.Duration(10 * time.Minute)
	if _, err := m.Control.UpdateCluster(ctx, &api.ClusterUpdateRequest{CertExpiry: &d}); err != nil {
		t.Fatal(err)
	}
	_, chain := renew(t, m, "n1")
	if life := chain[0].NotAfter.Sub(chain[0].NotBefore); life != 10*time.Minute+time.Hour {
		t.Fatalf("certificate valid for %s, want 10m after the backdated hour", life)
	}
}
