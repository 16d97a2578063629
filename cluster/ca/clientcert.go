package ca

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"time"
)

// Client certificates of operators (`berth ca client-cert`) are short-lived: the
// cluster keeps no list of them to revoke, so their expiry is what ends them.
const (
	DefaultClientCertValidity = 24 * time.Hour
	MaxClientCertValidity     = 30 * 24 * time.Hour
)

// IssueClientCert signs an operator's client certificate for the key in csrDER:
// Subject CN = name, OU = RoleAdmin, O = the cluster ID; client auth only and no
// server name, so it can never pass for a node; valid for validity
// (DefaultClientCertValidity when zero, at most MaxClientCertValidity). As with
// node certificates, nothing but the key is read from the CSR.
func (r *RootCA) IssueClientCert(csrDER []byte, name string, validity time.Duration) (certPEM []byte, err error) {
	csr, err := parseCSR(csrDER)
	if err != nil {
		return nil, err
	}
	if err := checkPublicKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCSR, err)
	}
	if err := validID(name); err != nil {
		return nil, fmt.Errorf("invalid client certificate name %q: %v", name, err)
	}
	if validity < 0 || validity > MaxClientCertValidity {
		return nil, fmt.Errorf("a client certificate is valid for at most %s, not %s: ask for a new one when it expires", MaxClientCertValidity, validity)
	}
	if validity == 0 {
		validity = DefaultClientCertValidity
	}
	return r.sign(csr.PublicKey, &x509.Certificate{
		Subject: pkix.Name{
			CommonName:         name,
			OrganizationalUnit: []string{string(RoleAdmin)},
			Organization:       []string{r.clusterID},
		},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, validity)
}
