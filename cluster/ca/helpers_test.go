package ca

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
	"time"
)

func mustRoot(t *testing.T, clusterID string, opts ...Option) *RootCA {
	t.Helper()
	r, err := NewRootCA(clusterID, opts...)
	if err != nil {
		t.Fatalf("NewRootCA(%q): %v", clusterID, err)
	}
	return r
}

// node is a node's key material as it would sit on disk.
type node struct {
	certPEM, keyPEM []byte
	cert            *x509.Certificate
	tls             tls.Certificate
}

func mustNode(t *testing.T, root *RootCA, nodeID string, role Role, validity time.Duration, addrs ...string) node {
	t.Helper()
	keyPEM, csr, err := NewNodeKeyAndCSR(nodeID)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := root.IssueNodeCert(csr, nodeID, role, validity, addrs...)
	if err != nil {
		t.Fatalf("IssueNodeCert: %v", err)
	}
	return nodeFrom(t, certPEM, keyPEM)
}

func nodeFrom(t *testing.T, certPEM, keyPEM []byte) node {
	t.Helper()
	kp, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("X509KeyPair: %v", err)
	}
	return node{certPEM: certPEM, keyPEM: keyPEM, cert: mustParseCert(t, certPEM), tls: kp}
}

func mustParseCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serverResult is what a one-shot server saw.
type serverResult struct {
	handshakeErr error
	state        tls.ConnectionState
	received     []byte // application data, if the handshake succeeded
}

// serveOnce accepts one TLS connection on loopback with cfg, records the
// handshake outcome and any application data, and answers "ok" to data.
func serveOnce(t *testing.T, cfg *tls.Config) (addr string, result <-chan serverResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	ch := make(chan serverResult, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			ch <- serverResult{handshakeErr: err}
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(conn, cfg)
		var r serverResult
		if r.handshakeErr = tc.Handshake(); r.handshakeErr == nil {
			r.state = tc.ConnectionState()
			buf := make([]byte, 64)
			n, _ := tc.Read(buf)
			r.received = buf[:n]
			if n > 0 {
				_, _ = tc.Write([]byte("ok"))
			}
		}
		ch <- r
	}()
	return ln.Addr().String(), ch
}

// roundTrip dials addr, sends "hello" and waits for "ok". In TLS 1.3 the
// client's handshake completes before the server has checked the client
// certificate, so a rejection shows up on the read.
func roundTrip(addr string, cfg *tls.Config) error {
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(&d, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("hello")); err != nil {
		return err
	}
	buf := make([]byte, 2)
	_, err = conn.Read(buf)
	return err
}

func wait(t *testing.T, ch <-chan serverResult) serverResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("server did not finish")
		return serverResult{}
	}
}
