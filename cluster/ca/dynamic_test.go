package ca

import (
	"crypto/x509"
	"errors"
	"sync/atomic"
	"testing"
)

// One dialler, built once, follows its node through a root rotation: the roots it
// verifies servers with are the ones of the moment.
func TestDynamicClientTLSConfigReadsTrustPerHandshake(t *testing.T) {
	oldRoot, newRoot := mustRoot(t, "c1"), mustRoot(t, "c1")
	server := mustNode(t, newRoot, "m1", RoleManager, 0)
	client := mustNode(t, oldRoot, "m2", RoleManager, 0)
	var cur atomic.Pointer[Trust]
	cur.Store(&Trust{Roots: []*x509.Certificate{oldRoot.Cert()}, Cert: client.tls})
	cfg := DynamicClientTLSConfig(func() Trust { return *cur.Load() }, ManagerServerName)
	serverCfg := ServerTLSConfig(newRoot.Cert(), server.tls, WithAdditionalRoots(oldRoot.Cert()))

	addr, res := serveOnce(t, serverCfg)
	if err := roundTrip(addr, cfg); !errors.Is(err, ErrInvalidCert) {
		t.Fatalf("a server of a root the client does not trust yet: err = %v, want ErrInvalidCert", err)
	}
	wait(t, res)

	cur.Store(&Trust{Roots: []*x509.Certificate{oldRoot.Cert(), newRoot.Cert()}, Cert: client.tls})
	addr, res = serveOnce(t, serverCfg)
	if err := roundTrip(addr, cfg); err != nil {
		t.Fatalf("after the new root is trusted: %v", err)
	}
	if r := wait(t, res); r.handshakeErr != nil {
		t.Fatal(r.handshakeErr)
	}
}

func TestDynamicClientTLSConfigChecksServerName(t *testing.T) {
	root := mustRoot(t, "c1")
	worker := mustNode(t, root, "w1", RoleWorker, 0)
	cfg := DynamicClientTLSConfig(func() Trust {
		return Trust{Roots: []*x509.Certificate{root.Cert()}, Cert: mustNode(t, root, "m1", RoleManager, 0).tls}
	}, ManagerServerName)
	addr, res := serveOnce(t, ServerTLSConfig(root.Cert(), worker.tls))
	if err := roundTrip(addr, cfg); !errors.Is(err, ErrInvalidCert) {
		t.Fatalf("a worker posing as a manager: err = %v, want ErrInvalidCert", err)
	}
	wait(t, res)
}

func TestParseCACerts(t *testing.T) {
	r1, r2 := mustRoot(t, "c1"), mustRoot(t, "c1")
	got, err := ParseCACerts(append(r1.CertPEM(), r2.CertPEM()...))
	if err != nil || len(got) != 2 || !got[0].Equal(r1.Cert()) || !got[1].Equal(r2.Cert()) {
		t.Fatalf("two roots: %v, %v", got, err)
	}
	if got, err := ParseCACerts(nil); err != nil || len(got) != 0 {
		t.Fatalf("none: %v, %v", got, err)
	}
	leaf := mustNode(t, r1, "n1", RoleWorker, 0)
	if _, err := ParseCACerts(leaf.certPEM); !errors.Is(err, ErrInvalidCert) {
		t.Fatalf("a node certificate as a root: err = %v, want ErrInvalidCert", err)
	}
}

func TestTokenRepin(t *testing.T) {
	r1, r2 := mustRoot(t, "c1"), mustRoot(t, "c1")
	tok, err := NewJoinToken(r1, RoleWorker)
	if err != nil {
		t.Fatal(err)
	}
	re, err := tok.Repin(r2.Digest())
	if err != nil || re.Secret != tok.Secret || re.CADigest != r2.Digest() {
		t.Fatalf("repinned %v, %v", re, err)
	}
	if _, err := tok.Repin("short"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("bad digest: err = %v", err)
	}
}
