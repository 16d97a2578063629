package ca

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"slices"
	"testing"
	"time"
)

func mustClientCert(t *testing.T, root *RootCA, validity time.Duration) *x509.Certificate {
	t.Helper()
	_, csr, err := NewNodeKeyAndCSR("ignored")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := root.IssueClientCert(csr, "admin-1", validity)
	if err != nil {
		t.Fatal(err)
	}
	return mustParseCert(t, certPEM)
}

func TestClientCertIsForClientsOnly(t *testing.T) {
	root := mustRoot(t, "c1")
	cert := mustClientCert(t, root, 0)
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || len(cert.DNSNames) > 0 || len(cert.IPAddresses) > 0 {
		t.Errorf("client certificate: key usage %v, names %v %v; want client auth and no server name", cert.ExtKeyUsage, cert.DNSNames, cert.IPAddresses)
	}
	if life := cert.NotAfter.Sub(cert.NotBefore); life != DefaultClientCertValidity+backdate {
		t.Errorf("lifetime %s, want %s (and the backdating hour)", life, DefaultClientCertValidity)
	}
	if _, err := ParseNodeIdentity(cert, "c1"); !errors.Is(err, ErrInvalidCert) {
		t.Errorf("ParseNodeIdentity of a client certificate: %v, want ErrInvalidCert", err)
	}
}

// An admin certificate is let in only where an endpoint lists RoleAdmin: never
// where any node is (no roles) or where managers are.
func TestRequireIdentityOfAnAdmin(t *testing.T) {
	root := mustRoot(t, "c1")
	cs := tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{mustClientCert(t, root, time.Hour)}}}
	for _, tt := range []struct {
		name  string
		roles []Role
		ok    bool
	}{
		{"any node", nil, false},
		{"managers", []Role{RoleManager}, false},
		{"nodes", []Role{RoleManager, RoleWorker}, false},
		{"operators", []Role{RoleManager, RoleAdmin}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id, err := RequireConnIdentity(cs, "c1", tt.roles...)
			switch {
			case tt.ok && (err != nil || id.Role != RoleAdmin || id.NodeID != "admin-1"):
				t.Fatalf("identity %+v, %v; want admin-1, an admin", id, err)
			case !tt.ok && !errors.Is(err, ErrForbidden):
				t.Fatalf("err = %v, want ErrForbidden", err)
			}
		})
	}
}

func TestIssueClientCertRefusesALongLife(t *testing.T) {
	root := mustRoot(t, "c1")
	_, csr, err := NewNodeKeyAndCSR("x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.IssueClientCert(csr, "admin-1", MaxClientCertValidity+time.Hour); err == nil {
		t.Fatal("a client certificate longer than the maximum was issued")
	}
}
