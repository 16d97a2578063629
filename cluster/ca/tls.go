package ca

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// ServerTLSConfig is the configuration of a node's TCP port: TLS 1.3 only,
// presenting nodeCert followed by the CA certificate(s) (so a joiner can pin
// the CA by digest, see FetchAndVerifyCA), and requiring a client
// certificate that verifies against the cluster CA.
//
// With WithOptionalClientCert, clients without a certificate are let
// through the handshake (a certificate that is given must still verify), and
// every handler must call RequireIdentity. WithAdditionalRoots trusts (and
// presents) more roots during a rotation; WithTLSClock sets the clock.
//
// NextProtos is left empty: the caller sets the ALPN protocols it serves
// (raft, h2, http/1.1) on the returned config.
func ServerTLSConfig(root *x509.Certificate, nodeCert tls.Certificate, opts ...TLSOption) *tls.Config {
	o := newTLSOptions(opts)
	roots := o.roots(root)
	chain := nodeCert
	chain.Certificate = slices.Clone(nodeCert.Certificate)
	for _, r := range roots {
		if !slices.ContainsFunc(chain.Certificate, func(der []byte) bool { return string(der) == string(r.Raw) }) {
			chain.Certificate = append(chain.Certificate, r.Raw)
		}
	}
	auth := tls.RequireAndVerifyClientCert
	if o.optionalClient {
		auth = tls.VerifyClientCertIfGiven
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{chain},
		ClientAuth:   auth,
		ClientCAs:    pool(roots),
		Time:         o.now,
	}
}

// ClientTLSConfig is the configuration for dialling another node: TLS 1.3
// only, trusting only the cluster CA, presenting nodeCert. serverName is
// checked against the peer certificate's SANs: use ManagerServerName to
// accept only managers (what agents, raft and the CLI over TCP want), or a
// node's advertise address.
//
// A zero nodeCert (no Certificate) presents no client certificate: that is
// the joiner's configuration once FetchAndVerifyCA has pinned the CA.
func ClientTLSConfig(root *x509.Certificate, nodeCert tls.Certificate, serverName string, opts ...TLSOption) *tls.Config {
	o := newTLSOptions(opts)
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    pool(o.roots(root)),
		ServerName: serverName,
		Time:       o.now,
	}
	if len(nodeCert.Certificate) > 0 {
		cfg.Certificates = []tls.Certificate{nodeCert}
	}
	return cfg
}

func (o tlsOptions) roots(root *x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for _, c := range append([]*x509.Certificate{root}, o.extraRoots...) {
		if c != nil && !slices.ContainsFunc(out, c.Equal) {
			out = append(out, c)
		}
	}
	return out
}

// pool never returns nil: a nil RootCAs would mean "the system roots" and a
// missing root must fail closed, not trust the internet's CAs.
func pool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// DigestMismatchError is returned by FetchAndVerifyCA when the manager does
// not present the CA the token pins. It matches ErrDigestMismatch.
type DigestMismatchError struct {
	Addr      string
	Presented []string // digests of the self-signed CA certificates presented
	Expected  string
}

func (e *DigestMismatchError) Error() string {
	if len(e.Presented) == 0 {
		return fmt.Sprintf("the manager at %s presented no CA certificate, the token expects %s: not a berth manager or a man in the middle", e.Addr, e.Expected)
	}
	return fmt.Sprintf("the manager at %s presented a CA with digest %s, the token expects %s: a token of another cluster, one from before its root CA was rotated (`berth join-token` on a manager prints the current one), or a man in the middle",
		e.Addr, strings.Join(e.Presented, ", "), e.Expected)
}

// Is makes errors.Is(err, ErrDigestMismatch) true.
func (e *DigestMismatchError) Is(target error) bool { return target == ErrDigestMismatch }

// FetchAndVerifyCA is trust on first use, pinned: it dials the manager at
// addr (host:port) without trusting anything yet, and inside the TLS
// handshake (tls.Config.VerifyConnection, which runs before the client sends
// its Finished message, let alone application data) it
//
//   - finds, among the certificates the server presented, the self-signed
//     CA whose digest is digest (else a DigestMismatchError);
//   - verifies the server's leaf certificate against that CA;
//   - checks the leaf is a manager of that CA's cluster, so that a worker
//     of the right cluster cannot pose as a manager and collect tokens.
//
// It then closes the connection and returns the CA certificate; the caller
// sends its join request over a new connection made with
// ClientTLSConfig(ca, tls.Certificate{}, ManagerServerName).
// WithTLSClock sets the clock used to verify the leaf.
func FetchAndVerifyCA(ctx context.Context, addr string, digest string, opts ...TLSOption) (*x509.Certificate, error) {
	if !validDigest(digest) {
		return nil, fmt.Errorf("%w: the CA digest must be %d characters of [0-9a-z]", ErrInvalidToken, DigestLen)
	}
	o := newTLSOptions(opts)
	now := o.now
	if now == nil {
		now = time.Now
	}
	var (
		pinned    *x509.Certificate
		verifyErr error
	)
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Nothing is trusted before the pin: chain verification is done by
		// VerifyConnection below against the pinned CA only.
		InsecureSkipVerify: true,
		ServerName:         ManagerServerName,
		VerifyConnection: func(cs tls.ConnectionState) error {
			pinned, verifyErr = verifyPinned(cs.PeerCertificates, addr, digest, now())
			return verifyErr
		},
	}
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if verifyErr != nil {
		// Our own error, not the TLS alert wrapping around it, so that
		// callers can match ErrDigestMismatch and friends.
		if conn != nil {
			_ = conn.Close()
		}
		return nil, verifyErr
	}
	if err != nil {
		return nil, fmt.Errorf("connect to manager at %s: %w", addr, err)
	}
	_ = conn.Close()
	if pinned == nil {
		// Unreachable with crypto/tls (VerifyConnection always runs on a
		// full handshake), but fail closed if that ever changes.
		return nil, fmt.Errorf("connect to manager at %s: the CA was not verified", addr)
	}
	return pinned, nil
}

func verifyPinned(certs []*x509.Certificate, addr, digest string, now time.Time) (*x509.Certificate, error) {
	if len(certs) == 0 {
		return nil, &DigestMismatchError{Addr: addr, Expected: digest}
	}
	leaf := certs[0]
	var ca *x509.Certificate
	var presented []string
	for _, c := range certs[1:] {
		if !isSelfSignedCA(c) {
			continue
		}
		d := Digest(c)
		presented = append(presented, d)
		if d == digest {
			ca = c
			break
		}
	}
	if ca == nil {
		return nil, &DigestMismatchError{Addr: addr, Presented: presented, Expected: digest}
	}
	clusterID, err := ClusterIDOf(ca)
	if err != nil {
		return nil, err
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err = leaf.Verify(x509.VerifyOptions{
		Roots:         pool([]*x509.Certificate{ca}),
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("the manager at %s presented the right CA but a certificate that does not verify against it: %w: %v", addr, ErrInvalidCert, err)
	}
	id, err := ParseNodeIdentity(leaf, clusterID)
	if err != nil {
		return nil, fmt.Errorf("the manager at %s: %w", addr, err)
	}
	if id.Role != RoleManager {
		return nil, fmt.Errorf("%w: the node at %s (%s) is a %s, joins go to a manager", ErrForbidden, addr, id.NodeID, id.Role)
	}
	return ca, nil
}
