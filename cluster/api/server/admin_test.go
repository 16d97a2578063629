package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/command"
)

// An operator's client certificate does on the port what the local socket does, and
// nothing that only nodes do; it is not a node, so no membership is asked of it.
func TestAdminCertificateActsAsTheSocket(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t)
	addr := serveRemote(t, b, p)
	cert, csr := p.admin(t)
	admin := remoteClient(t, addr, p.root.Cert(), &cert)
	ctx := context.Background()

	if _, _, err := admin.Nodes(ctx, api.Query{}); err != nil {
		t.Errorf("admin listing nodes: %v", err)
	}
	if _, err := admin.Heartbeat(ctx, api.HeartbeatRequest{}); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("admin sending a node's heartbeat: %v, want forbidden", err)
	}
	if _, err := admin.Apply(ctx, []byte{byte(command.CmdNodeUpdate), '{', '}'}); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("admin forwarding a raft command: %v, want forbidden", err)
	}
	if _, err := admin.IssueClientCert(ctx, api.ClientCertRequest{CSR: csr}); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("admin minting a client certificate over the port: %v, want no such endpoint", err)
	}
}

// admin issues an operator's client certificate, and returns it with the CSR it
// was made from.
func (p *pki) admin(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, csr, err := ca.NewNodeKeyAndCSR("ignored")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := p.root.IssueClientCert(csr, "admin-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, key)
	if err != nil {
		t.Fatal(err)
	}
	return cert, csr
}
