package ca

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestRootRotation(t *testing.T) {
	oldRoot, newRoot := mustRoot(t, "c1"), mustRoot(t, "c1")
	cross, err := oldRoot.CrossSign(newRoot)
	if err != nil {
		t.Fatal(err)
	}
	crossCert := mustParseCert(t, cross)
	if err := crossCert.CheckSignatureFrom(oldRoot.Cert()); err != nil {
		t.Fatalf("cross-signed certificate is not signed by the old root: %v", err)
	}

	m1 := mustNode(t, oldRoot, "m1", RoleManager, 0, "10.0.0.1")
	m2old := mustNode(t, oldRoot, "m2", RoleManager, 0, "10.0.0.2", "m2.lan")

	// Step 3: m2 moves to the new root with the same key and identity.
	leaf, err := newRoot.ReissueNodeCert(m2old.cert, 0)
	if err != nil {
		t.Fatal(err)
	}
	m2 := nodeFrom(t, append(leaf, cross...), m2old.keyPEM)
	if err := m2.cert.CheckSignatureFrom(newRoot.Cert()); err != nil {
		t.Fatalf("reissued certificate not signed by the new root: %v", err)
	}
	id, err := ParseNodeIdentity(m2.cert, "c1")
	if err != nil || id != (Identity{NodeID: "m2", Role: RoleManager, ClusterID: "c1"}) {
		t.Fatalf("reissued identity %+v, %v", id, err)
	}
	if !slices.Equal(m2.cert.DNSNames, m2old.cert.DNSNames) || len(m2.cert.IPAddresses) != 1 {
		t.Fatalf("SANs not kept: %v %v", m2.cert.DNSNames, m2.cert.IPAddresses)
	}

	both := WithAdditionalRoots(newRoot.Cert())
	bothFromNew := WithAdditionalRoots(oldRoot.Cert())

	t.Run("old-root server, new-root client, both trusted", func(t *testing.T) {
		addr, res := serveOnce(t, ServerTLSConfig(oldRoot.Cert(), m1.tls, both))
		if err := roundTrip(addr, ClientTLSConfig(newRoot.Cert(), m2.tls, ManagerServerName, bothFromNew)); err != nil {
			t.Fatal(err)
		}
		if r := wait(t, res); r.handshakeErr != nil {
			t.Fatal(r.handshakeErr)
		}
	})
	t.Run("new-root server, old-root client, both trusted", func(t *testing.T) {
		addr, res := serveOnce(t, ServerTLSConfig(newRoot.Cert(), m2.tls, bothFromNew))
		if err := roundTrip(addr, ClientTLSConfig(oldRoot.Cert(), m1.tls, ManagerServerName, both)); err != nil {
			t.Fatal(err)
		}
		wait(t, res)
	})
	t.Run("node that only trusts the old root accepts a new-root cert via the cross-signed one", func(t *testing.T) {
		addr, res := serveOnce(t, ServerTLSConfig(newRoot.Cert(), m2.tls, bothFromNew))
		if err := roundTrip(addr, ClientTLSConfig(oldRoot.Cert(), m1.tls, ManagerServerName)); err != nil {
			t.Fatal(err)
		}
		wait(t, res)
	})
	t.Run("after the old root is dropped, its certificates are refused", func(t *testing.T) {
		addr, res := serveOnce(t, ServerTLSConfig(newRoot.Cert(), m2.tls))
		if err := roundTrip(addr, forceClientCert(ClientTLSConfig(newRoot.Cert(), m1.tls, ManagerServerName), m1.tls)); err == nil {
			t.Fatal("old-root client accepted")
		}
		if r := wait(t, res); r.handshakeErr == nil {
			t.Fatal("server accepted an old-root certificate")
		}
	})
	t.Run("joins with old and new digests both work during the rotation", func(t *testing.T) {
		for _, d := range []string{oldRoot.Digest(), newRoot.Digest()} {
			addr, res := serveOnce(t, ServerTLSConfig(newRoot.Cert(), m2.tls, bothFromNew, WithOptionalClientCert()))
			if _, err := FetchAndVerifyCA(context.Background(), addr, d); err != nil {
				t.Fatalf("digest %s: %v", d, err)
			}
			wait(t, res)
		}
	})
}

func TestCrossSignAndReissueReject(t *testing.T) {
	c1, c2 := mustRoot(t, "c1"), mustRoot(t, "c2")
	if _, err := c1.CrossSign(c2); !errors.Is(err, ErrWrongCluster) {
		t.Fatalf("cross-sign across clusters: %v", err)
	}
	if _, err := c1.ReissueNodeCert(mustNode(t, c2, "n", RoleWorker, 0).cert, 0); !errors.Is(err, ErrWrongCluster) {
		t.Fatalf("reissue a cert of another cluster: %v", err)
	}
}
