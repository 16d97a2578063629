package ca

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"slices"
	"testing"
	"time"
)

// The CA writes role and node ID; a CSR claiming to be a manager gets a
// worker certificate when the cluster issues it as a worker.
func TestIssueNodeCertIgnoresCSRClaims(t *testing.T) {
	root := mustRoot(t, "c1")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	evil, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{
			CommonName:         "manager-evil",
			OrganizationalUnit: []string{"manager"},
			Organization:       []string{"c1"},
		},
		DNSNames:    []string{ManagerServerName, "evil.example.com"},
		IPAddresses: []net.IP{net.ParseIP("6.6.6.6")},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := root.IssueNodeCert(evil, "node-7", RoleWorker, time.Hour, "10.0.0.7:4270", "node7.lan")
	if err != nil {
		t.Fatal(err)
	}
	cert := mustParseCert(t, certPEM)
	id, err := ParseNodeIdentity(cert, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if id != (Identity{NodeID: "node-7", Role: RoleWorker, ClusterID: "c1"}) {
		t.Fatalf("identity = %+v", id)
	}
	if want := []string{WorkerServerName, "node7.lan"}; !slices.Equal(cert.DNSNames, want) {
		t.Fatalf("DNS SANs = %v, want %v", cert.DNSNames, want)
	}
	if len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.ParseIP("10.0.0.7")) {
		t.Fatalf("IP SANs = %v, want [10.0.0.7]", cert.IPAddresses)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Fatalf("EKU = %v, want server and client auth", cert.ExtKeyUsage)
	}
	if cert.IsCA {
		t.Fatal("node certificate is a CA")
	}
	if !cert.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		t.Fatal("certificate is not for the CSR's key")
	}
	// A worker certificate cannot pass as a manager in hostname checks.
	if err := cert.VerifyHostname(ManagerServerName); err == nil {
		t.Fatal("worker certificate verifies as " + ManagerServerName)
	}
}

func TestIssueNodeCertRejects(t *testing.T) {
	root := mustRoot(t, "c1")
	_, csr, err := NewNodeKeyAndCSR("n1")
	if err != nil {
		t.Fatal(err)
	}
	tampered := slices.Clone(csr)
	tampered[len(tampered)-5] ^= 0xff // inside the signature
	cases := []struct {
		name    string
		csr     []byte
		nodeID  string
		role    Role
		addrs   []string
		wantErr error
	}{
		{"garbage CSR", []byte("nope"), "n1", RoleWorker, nil, ErrInvalidCSR},
		{"bad CSR signature", tampered, "n1", RoleWorker, nil, ErrInvalidCSR},
		{"bad role", csr, "n1", Role("admin"), nil, ErrInvalidRole},
		{"empty node ID", csr, "", RoleWorker, nil, nil},
		{"node ID with slash", csr, "a/b", RoleWorker, nil, nil},
		{"reserved SAN", csr, "n1", RoleWorker, []string{ManagerServerName}, nil},
		{"bad address", csr, "n1", RoleWorker, []string{"not an address"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := root.IssueNodeCert(tc.csr, tc.nodeID, tc.role, 0, tc.addrs...)
			if err == nil {
				t.Fatal("issued")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestParseNodeIdentityRejects(t *testing.T) {
	c1, c2 := mustRoot(t, "c1"), mustRoot(t, "c2")
	other := mustNode(t, c2, "n1", RoleManager, 0)
	if _, err := ParseNodeIdentity(other.cert, "c1"); !errors.Is(err, ErrWrongCluster) {
		t.Fatalf("cert of cluster c2 checked for c1: err = %v, want ErrWrongCluster", err)
	}
	if _, err := ParseNodeIdentity(c1.Cert(), "c1"); !errors.Is(err, ErrInvalidCert) {
		t.Fatalf("CA cert as node cert: err = %v, want ErrInvalidCert", err)
	}
	if _, err := ParseNodeIdentity(mustNode(t, c1, "n1", RoleWorker, 0).cert, ""); err == nil {
		t.Fatal("empty cluster ID accepted")
	}
	if _, err := ParseNodeIdentity(nil, "c1"); err == nil {
		t.Fatal("nil certificate accepted")
	}
}

// Expiry with an injected clock: validity periods come from the CA's clock,
// node certificates are capped at the root's expiry, and an expired root
// refuses to issue.
func TestNodeCertValidityAndExpiry(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	clock := func() time.Time { return now }
	root := mustRoot(t, "c1", WithClock(clock), WithValidity(48*time.Hour))

	n := mustNode(t, root, "n1", RoleWorker, time.Hour)
	if !n.cert.NotBefore.Equal(t0.Add(-backdate)) || !n.cert.NotAfter.Equal(t0.Add(time.Hour)) {
		t.Fatalf("validity %s..%s", n.cert.NotBefore, n.cert.NotAfter)
	}
	if def := mustNode(t, root, "n2", RoleWorker, 0); !def.cert.NotAfter.Equal(root.Cert().NotAfter) {
		t.Fatalf("90-day default not capped at the root's expiry: %s vs %s", def.cert.NotAfter, root.Cert().NotAfter)
	}

	now = t0.Add(72 * time.Hour)
	_, csr, err := NewNodeKeyAndCSR("n3")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.IssueNodeCert(csr, "n3", RoleWorker, time.Hour); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired root issued: err = %v, want ErrExpired", err)
	}
}

func TestIssueNodeCertKeyTypes(t *testing.T) {
	root := mustRoot(t, "c1")
	csrFor := func(key any) []byte {
		t.Helper()
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := root.IssueNodeCert(csrFor(edKey), "n1", RoleWorker, 0); err != nil {
		t.Fatalf("Ed25519: %v", err)
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Skipf("cannot make a 1024-bit RSA key here: %v", err)
	}
	if _, err := root.IssueNodeCert(csrFor(weak), "n1", RoleWorker, 0); !errors.Is(err, ErrInvalidCSR) {
		t.Fatalf("RSA-1024: err = %v, want ErrInvalidCSR", err)
	}
}
