package ca

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// Trust is what a node trusts and presents at one moment: the roots (the
// cluster root first, then any it still trusts during a root rotation) and its
// own certificate chain.
type Trust struct {
	Roots []*x509.Certificate
	Cert  tls.Certificate
}

// DynamicClientTLSConfig is ClientTLSConfig for a connection made long after
// the configuration: current is read at every handshake, so a renewed
// certificate or a rotated root is used at once by a dialler built only once
// (raft's stream layer). The server certificate is verified by
// VerifyConnection against the current roots and serverName, so callers must
// not replace VerifyConnection, and ConnectionState.VerifiedChains stays empty
// on the client side.
func DynamicClientTLSConfig(current func() Trust, serverName string, opts ...TLSOption) *tls.Config {
	o := newTLSOptions(opts)
	now := o.now
	if now == nil {
		now = time.Now
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Verification is not skipped: VerifyConnection below does it with the
		// roots of the moment, which a static RootCAs cannot hold.
		InsecureSkipVerify: true,
		ServerName:         serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c := current().Cert
			return &c, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyServer(cs.PeerCertificates, current().Roots, serverName, now())
		},
	}
}

func verifyServer(certs, roots []*x509.Certificate, serverName string, now time.Time) error {
	if len(certs) == 0 {
		return errors.New("the server presented no certificate")
	}
	if len(roots) == 0 {
		return errors.New("this node trusts no cluster CA")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         pool(roots),
		Intermediates: inter,
		DNSName:       serverName,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("%w: the server's certificate does not verify against the cluster CA: %v", ErrInvalidCert, err)
	}
	return nil
}

// ParseCACerts parses zero or more root CA certificates (concatenated PEM), each
// checked as ParseCACert does: the roots a node still trusts during a rotation.
func ParseCACerts(certsPEM []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := bytes.TrimSpace(certsPEM)
	for len(rest) > 0 {
		block, r := pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("%w: trusted roots: not PEM", ErrInvalidCert)
		}
		c, err := ParseCACert(pem.EncodeToMemory(block))
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		rest = bytes.TrimSpace(r)
	}
	return out, nil
}
