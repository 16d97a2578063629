package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// NewNodeKeyAndCSR is the joiner's side: a fresh ECDSA P-256 key (PKCS#8
// PEM, which never leaves the node) and a CSR proving possession of it. The
// CSR's subject carries nodeID only as a hint for humans reading it; the CA
// ignores everything in a CSR but the public key.
func NewNodeKeyAndCSR(nodeID string) (keyPEM, csrDER []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate node key: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal node key: %w", err)
	}
	csrDER, err = x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: nodeID},
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CSR: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: keyDER}), csrDER, nil
}

// IssueNodeCert signs a node certificate for the key in csrDER. Everything
// that matters is decided here, never read from the CSR (whose signature is
// checked only as proof that the requester holds the key):
//
//   - Subject CN = nodeID, OU = role, O = the cluster ID;
//   - DNS SAN role.ServerName() ("berth-manager" or "berth-worker"), so a
//     client dialling with ServerName ManagerServerName only accepts
//     managers, plus the node's advertise addresses: each of addrs is an IP
//     or DNS name, optionally with a port, which is dropped;
//   - extended key usage server and client auth: every node is both;
//   - valid from now minus an hour (clock skew) for validity
//     (DefaultNodeCertValidity when zero), capped at the root's expiry.
//
// It returns the leaf certificate as PEM. TLS servers present it together
// with the CA certificate (ServerTLSConfig adds it).
func (r *RootCA) IssueNodeCert(csrDER []byte, nodeID string, role Role, validity time.Duration, addrs ...string) (certPEM []byte, err error) {
	csr, err := parseCSR(csrDER)
	if err != nil {
		return nil, err
	}
	return r.issue(csr.PublicKey, nodeID, role, validity, addrs)
}

// parseCSR reads a CSR whose signature proves its sender holds the key.
func parseCSR(csrDER []byte) (*x509.CertificateRequest, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature does not verify: %v", ErrInvalidCSR, err)
	}
	return csr, nil
}

// ReissueNodeCert signs, under this root, a new certificate for the same key
// and identity as old, keeping its address SANs. It is how node certificates
// move to a new root during rotation without the node making a new key.
// old must come from a verified peer chain (a certificate issued by a root
// the cluster trusts) of the same cluster.
func (r *RootCA) ReissueNodeCert(old *x509.Certificate, validity time.Duration) (certPEM []byte, err error) {
	id, err := ParseNodeIdentity(old, r.clusterID)
	if err != nil {
		return nil, err
	}
	var addrs []string
	for _, d := range old.DNSNames {
		if d != ManagerServerName && d != WorkerServerName {
			addrs = append(addrs, d)
		}
	}
	for _, ip := range old.IPAddresses {
		addrs = append(addrs, ip.String())
	}
	return r.issue(old.PublicKey, id.NodeID, id.Role, validity, addrs)
}

func (r *RootCA) issue(pub any, nodeID string, role Role, validity time.Duration, addrs []string) ([]byte, error) {
	if err := validID(nodeID); err != nil {
		return nil, fmt.Errorf("invalid node ID %q: %v", nodeID, err)
	}
	if !role.Valid() {
		return nil, fmt.Errorf("%w: %q", ErrInvalidRole, role)
	}
	if validity < 0 {
		return nil, fmt.Errorf("invalid node certificate validity %s", validity)
	}
	if validity == 0 {
		validity = DefaultNodeCertValidity
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCSR, err)
	}
	dns, ips, err := splitAddrs(addrs)
	if err != nil {
		return nil, err
	}
	return r.sign(pub, &x509.Certificate{
		Subject: pkix.Name{
			CommonName:         nodeID,
			OrganizationalUnit: []string{string(role)},
			Organization:       []string{r.clusterID},
		},
		DNSNames:    append([]string{role.ServerName()}, dns...),
		IPAddresses: ips,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, validity)
}

// sign completes tmpl (serial, validity from now, key usage, not a CA) and signs
// it for pub.
func (r *RootCA) sign(pub any, tmpl *x509.Certificate, validity time.Duration) ([]byte, error) {
	now := r.now()
	if err := r.checkValid(now); err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-backdate), r.notAfter(now, validity)
	// TLS 1.3 only ever signs with the leaf's key, so DigitalSignature is the one
	// key usage needed, whatever the key type.
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid, tmpl.IsCA = true, false
	der, err := x509.CreateCertificate(rand.Reader, tmpl, r.cert, pub, r.signer)
	if err != nil {
		return nil, fmt.Errorf("sign certificate %s: %w", tmpl.Subject.CommonName, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der}), nil
}

// splitAddrs sorts advertise addresses into IP and DNS SANs, dropping ports
// ("10.0.0.1:4270", "[fd00::1]:4270") and duplicates.
func splitAddrs(addrs []string) (dns []string, ips []net.IP, err error) {
	for _, a := range addrs {
		host := strings.TrimSpace(a)
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		if host == "" {
			return nil, nil, fmt.Errorf("invalid advertise address %q", a)
		}
		if ip := net.ParseIP(host); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
			continue
		}
		if !validDNSName(host) {
			return nil, nil, fmt.Errorf("invalid advertise address %q: not an IP address or DNS name", a)
		}
		host = strings.ToLower(strings.TrimSuffix(host, "."))
		if host == ManagerServerName || host == WorkerServerName {
			// Reserved: the role name must only come from the role.
			return nil, nil, fmt.Errorf("invalid advertise address %q: reserved name", a)
		}
		if !slices.Contains(dns, host) {
			dns = append(dns, host)
		}
	}
	return dns, ips, nil
}

func validDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}
