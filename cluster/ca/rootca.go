package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

const (
	pemCertificate = "CERTIFICATE"
	pemPrivateKey  = "PRIVATE KEY" // PKCS#8
	pemECKey       = "EC PRIVATE KEY"

	// rootCommonName names the CA in its subject; the cluster ID is the O.
	rootCommonName = "berth root CA"

	// DigestLen is the length of a CA digest: SHA-256 in base36.
	DigestLen = 50
)

// RootCA is a cluster's certificate authority: its self-signed certificate
// and the private key that signs node certificates. Only managers hold one.
// It is immutable and safe for concurrent use.
type RootCA struct {
	cert      *x509.Certificate
	certPEM   []byte
	keyPEM    []byte
	signer    crypto.Signer
	clusterID string
	digest    string
	now       func() time.Time
}

// NewRootCA creates a root CA for clusterID: an ECDSA P-256 key and a
// self-signed certificate (Subject CN "berth root CA", O clusterID), valid
// for DefaultRootValidity unless WithValidity says otherwise.
//
// ECDSA P-256 rather than Ed25519: both work with crypto/tls 1.3, but P-256
// is what every other TLS stack, HSM and openssl build accepts, so an
// operator can inspect or proxy berth's traffic with ordinary tools.
func NewRootCA(clusterID string, opts ...Option) (*RootCA, error) {
	if err := validID(clusterID); err != nil {
		return nil, fmt.Errorf("invalid cluster ID %q: %v", clusterID, err)
	}
	o := newCAOptions(opts)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate root CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := o.now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: rootCommonName, Organization: []string{clusterID}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(o.validity),
		IsCA:         true,
		// One intermediate is allowed so that a cross-signed certificate
		// of the next root (CrossSign) can sit between this root and the
		// node certificates during a rotation.
		BasicConstraintsValid: true,
		MaxPathLen:            1,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create root CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse root CA certificate: %w", err)
	}
	return newRootCA(cert, key, o)
}

// ParseRootCA loads a root CA from the PEM that CertPEM and KeyPEM produced
// (PKCS#8 keys; SEC 1 "EC PRIVATE KEY" is accepted too). It checks that the
// certificate is a self-signed CA certificate of a berth cluster and that
// the key belongs to it. WithClock applies; WithValidity is ignored.
func ParseRootCA(certPEM, keyPEM []byte, opts ...Option) (*RootCA, error) {
	cert, err := ParseCACert(certPEM)
	if err != nil {
		return nil, err
	}
	block, rest := pem.Decode(keyPEM)
	if block == nil || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: root CA key: expected exactly one PEM block", ErrInvalidCert)
	}
	var key any
	switch block.Type {
	case pemPrivateKey:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case pemECKey:
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: root CA key: unexpected PEM block %q", ErrInvalidCert, block.Type)
	}
	if err != nil {
		// The parser's error text does not include key bytes.
		return nil, fmt.Errorf("%w: root CA key: %v", ErrInvalidCert, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: root CA key: unsupported key type %T", ErrInvalidCert, key)
	}
	return newRootCA(cert, signer, newCAOptions(opts))
}

func newRootCA(cert *x509.Certificate, signer crypto.Signer, o caOptions) (*RootCA, error) {
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%w: the root CA key does not belong to the root CA certificate", ErrInvalidCert)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		return nil, fmt.Errorf("marshal root CA key: %w", err)
	}
	clusterID, err := ClusterIDOf(cert)
	if err != nil {
		return nil, err
	}
	return &RootCA{
		cert:      cert,
		certPEM:   pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: cert.Raw}),
		keyPEM:    pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: keyDER}),
		signer:    signer,
		clusterID: clusterID,
		digest:    Digest(cert),
		now:       o.now,
	}, nil
}

// ParseCACert parses and checks a root CA certificate without its key: the
// verify-only form that every node keeps. It must be a single self-signed
// CA certificate of a berth cluster.
func ParseCACert(certPEM []byte) (*x509.Certificate, error) {
	block, rest := pem.Decode(certPEM)
	if block == nil || block.Type != pemCertificate || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: root CA: expected exactly one PEM CERTIFICATE block", ErrInvalidCert)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: root CA: %v", ErrInvalidCert, err)
	}
	if !isSelfSignedCA(cert) {
		return nil, fmt.Errorf("%w: root CA: not a self-signed CA certificate", ErrInvalidCert)
	}
	if _, err := ClusterIDOf(cert); err != nil {
		return nil, err
	}
	return cert, nil
}

// ClusterIDOf returns the cluster ID a CA certificate was made for (its
// single Subject O).
func ClusterIDOf(caCert *x509.Certificate) (string, error) {
	if caCert == nil || len(caCert.Subject.Organization) != 1 || validID(caCert.Subject.Organization[0]) != nil {
		return "", fmt.Errorf("%w: not a berth cluster CA (the subject must name one cluster)", ErrInvalidCert)
	}
	return caCert.Subject.Organization[0], nil
}

func isSelfSignedCA(c *x509.Certificate) bool {
	return c.IsCA && c.BasicConstraintsValid &&
		bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// Digest returns the CA digest that join tokens pin: SHA-256 of the
// certificate's DER, as lower-case base36 zero-padded to DigestLen (50)
// characters. See the package documentation for why base36.
func Digest(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base36(sum[:], DigestLen)
}

// base36 encodes b as a big-endian number in [0-9a-z], left-padded with
// zeros to width so that every value has the same length.
func base36(b []byte, width int) string {
	s := new(big.Int).SetBytes(b).Text(36)
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return s
}

func validDigest(s string) bool {
	return len(s) == DigestLen && isBase36(s)
}

func isBase36(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

func randomSerial() (*big.Int, error) {
	// 128 random bits, as the CA/Browser forum asks for at least 64.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return serial, nil
}

// Cert returns the CA certificate. Callers must not modify it.
func (r *RootCA) Cert() *x509.Certificate { return r.cert }

// CertPEM returns the CA certificate as one PEM CERTIFICATE block.
func (r *RootCA) CertPEM() []byte { return bytes.Clone(r.certPEM) }

// KeyPEM returns the CA private key as a PKCS#8 PEM block. It is a secret:
// store it only in the encrypted raft state, never log it.
func (r *RootCA) KeyPEM() []byte { return bytes.Clone(r.keyPEM) }

// ClusterID returns the cluster the CA belongs to.
func (r *RootCA) ClusterID() string { return r.clusterID }

// Digest returns the CA digest (see the package function Digest).
func (r *RootCA) Digest() string { return r.digest }

// String describes the CA without its key, so that printing a RootCA by
// mistake (%v on a struct holding one) never reveals it.
func (r *RootCA) String() string {
	return fmt.Sprintf("berth root CA of cluster %s (digest %s)", r.clusterID, r.digest)
}

// GoString is String, for %#v.
func (r *RootCA) GoString() string { return r.String() }

// checkValid refuses to sign with a root outside its validity period: what
// it signed would not verify anyway, and saying so early is clearer.
func (r *RootCA) checkValid(now time.Time) error {
	if now.Before(r.cert.NotBefore) || now.After(r.cert.NotAfter) {
		return fmt.Errorf("root CA of cluster %s is valid from %s to %s, now is %s: %w",
			r.clusterID, r.cert.NotBefore.UTC().Format(time.RFC3339), r.cert.NotAfter.UTC().Format(time.RFC3339),
			now.UTC().Format(time.RFC3339), ErrExpired)
	}
	return nil
}

// notAfter caps a validity period at the root's own expiry: a certificate
// cannot usefully outlive its issuer.
func (r *RootCA) notAfter(now time.Time, validity time.Duration) time.Time {
	end := now.Add(validity)
	if end.After(r.cert.NotAfter) {
		end = r.cert.NotAfter
	}
	return end
}

// CrossSign is the first step of root rotation: this (old) root signs the
// new root's subject and key, giving an intermediate certificate. A node
// certificate issued by newRoot, presented together with the cross-signed
// certificate, then verifies on nodes that still trust only the old root.
//
// Rotation plan (orchestration lives in the cluster, not here):
//  1. NewRootCA for the same cluster; CrossSign it with the current root.
//  2. Distribute the new root certificate; every node trusts both
//     (WithAdditionalRoots).
//  3. Re-issue every node certificate under the new root (ReissueNodeCert,
//     or IssueNodeCert on the next renewal), chain: leaf + cross-signed.
//  4. Make new join tokens (the digest changed).
//  5. When no node certificate of the old root is left, stop trusting it.
func (r *RootCA) CrossSign(newRoot *RootCA) (certPEM []byte, err error) {
	if newRoot == nil {
		return nil, errors.New("cross-sign: no new root")
	}
	if newRoot.clusterID != r.clusterID {
		return nil, fmt.Errorf("cross-sign: the new root %w %q, not %q", ErrWrongCluster, newRoot.clusterID, r.clusterID)
	}
	now := r.now()
	if err := r.checkValid(now); err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	nc := newRoot.cert
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// Same subject and key identifier as the new root, so chain
		// building matches node certificates (issuer, authority key ID)
		// to either the new root or this cross-signed copy. The subject's
		// bytes are copied: re-encoded, an operator's root made by openssl
		// (UTF8String) would no longer match its leaves' issuer.
		Subject:               nc.Subject,
		RawSubject:            nc.RawSubject,
		SubjectKeyId:          nc.SubjectKeyId,
		NotBefore:             now.Add(-backdate),
		NotAfter:              r.notAfter(now, nc.NotAfter.Sub(now)),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              nc.KeyUsage,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, r.cert, nc.PublicKey, r.signer)
	if err != nil {
		return nil, fmt.Errorf("cross-sign: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der}), nil
}

// checkPublicKey refuses keys too weak for a node certificate.
func checkPublicKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("unsupported ECDSA curve")
	case ed25519.PublicKey:
		return nil
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits is too short (2048 minimum)", k.N.BitLen())
		}
		return nil
	default:
		return fmt.Errorf("unsupported key type %T", pub)
	}
}
