package ca

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Role is a node's role in the cluster. It lives in the node certificate's
// Subject OU and nowhere a peer could choose it.
type Role string

const (
	RoleManager Role = "manager"
	RoleWorker  Role = "worker"
	// RoleAdmin is an operator's client certificate (IssueClientCert), not a
	// node's role: Valid and ParseNodeIdentity refuse it, and RequireIdentity
	// accepts it only where the endpoint lists it.
	RoleAdmin Role = "admin"
)

// Server names written into every node certificate as a DNS SAN, according
// to the role. A client dialling a manager sets ServerName to
// ManagerServerName so that ordinary TLS hostname verification already
// refuses a peer that is not a manager (a worker cannot impersonate one).
const (
	ManagerServerName = "berth-manager"
	WorkerServerName  = "berth-worker"
)

// ParseRole parses "manager" or "worker".
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !r.Valid() {
		return "", fmt.Errorf("%w: %q", ErrInvalidRole, s)
	}
	return r, nil
}

// Valid reports whether r is manager or worker.
func (r Role) Valid() bool { return r == RoleManager || r == RoleWorker }

// ServerName returns the DNS SAN that certificates of this role carry.
func (r Role) ServerName() string {
	if r == RoleManager {
		return ManagerServerName
	}
	return WorkerServerName
}

// Identity is who a verified peer is, as written by the CA.
type Identity struct {
	// NodeID is the node's ID; for RoleAdmin, the client certificate's name.
	NodeID    string
	Role      Role
	ClusterID string
}

// ParseNodeIdentity reads the identity from a node certificate that the
// caller has already verified against the cluster CA (for example
// tls.ConnectionState.VerifiedChains[0][0]): Subject CN is the node ID, the
// single OU the role, the single O the cluster ID. A certificate of another
// cluster fails with ErrWrongCluster. It does not verify signatures or
// validity; use RequireIdentity / RequireConnIdentity on connections, which
// insist on a verified chain.
func ParseNodeIdentity(cert *x509.Certificate, clusterID string) (Identity, error) {
	id, err := parseIdentity(cert, clusterID)
	if err == nil && id.Role == RoleAdmin {
		return Identity{}, fmt.Errorf("%w: %s is an operator's client certificate, not a node certificate", ErrInvalidCert, id.NodeID)
	}
	return id, err
}

// parseIdentity is ParseNodeIdentity that also reads an admin client certificate.
func parseIdentity(cert *x509.Certificate, clusterID string) (Identity, error) {
	if cert == nil {
		return Identity{}, fmt.Errorf("%w: no certificate", ErrInvalidCert)
	}
	if clusterID == "" {
		// An empty expected cluster would otherwise match a certificate
		// without an O; refuse rather than authenticate by accident.
		return Identity{}, fmt.Errorf("%w: no cluster ID to check the certificate against", ErrInvalidCert)
	}
	if cert.IsCA {
		return Identity{}, fmt.Errorf("%w: a CA certificate is not a node certificate", ErrInvalidCert)
	}
	s := cert.Subject
	if len(s.Organization) != 1 || len(s.OrganizationalUnit) != 1 || validID(s.CommonName) != nil {
		return Identity{}, fmt.Errorf("%w: not a berth node certificate (%s)", ErrInvalidCert, s)
	}
	if s.Organization[0] != clusterID {
		return Identity{}, fmt.Errorf("certificate of node %q %w %q, not %q", s.CommonName, ErrWrongCluster, s.Organization[0], clusterID)
	}
	if Role(s.OrganizationalUnit[0]) == RoleAdmin {
		return Identity{NodeID: s.CommonName, Role: RoleAdmin, ClusterID: clusterID}, nil
	}
	role, err := ParseRole(s.OrganizationalUnit[0])
	if err != nil {
		return Identity{}, fmt.Errorf("%w: node certificate has an %w", ErrInvalidCert, err)
	}
	return Identity{NodeID: s.CommonName, Role: role, ClusterID: clusterID}, nil
}

// RequireIdentity authenticates an HTTP request that arrived on the node
// TCP port: it returns the identity in the peer's verified certificate and
// checks that its role is one of roles (any node role when none are given; an
// admin client certificate only where roles lists RoleAdmin).
// Errors: ErrNoClientCert (answer 401), ErrWrongCluster, ErrForbidden
// (answer 403).
//
// The API calls it on every endpoint except join and Git webhooks, which
// is what makes a listener with WithOptionalClientCert safe. It never
// looks at anything the client sent besides its certificate.
func RequireIdentity(r *http.Request, clusterID string, roles ...Role) (Identity, error) {
	if r == nil || r.TLS == nil {
		return Identity{}, ErrNoClientCert
	}
	return RequireConnIdentity(*r.TLS, clusterID, roles...)
}

// RequireConnIdentity is RequireIdentity for any connection on the port,
// for example raft connections told apart by ALPN, which must require
// RoleManager before being handed to raft.
func RequireConnIdentity(cs tls.ConnectionState, clusterID string, roles ...Role) (Identity, error) {
	// VerifiedChains is only set when crypto/tls verified the certificate
	// against ClientCAs; PeerCertificates alone could be unverified (for
	// example with tls.RequestClientCert), so it is never trusted.
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return Identity{}, ErrNoClientCert
	}
	id, err := parseIdentity(cs.VerifiedChains[0][0], clusterID)
	if err != nil {
		return Identity{}, err
	}
	if id.Role == RoleAdmin && !slices.Contains(roles, RoleAdmin) {
		return id, fmt.Errorf("%w: %s is an operator's client certificate, and this is for nodes of the cluster", ErrForbidden, id.NodeID)
	}
	if len(roles) > 0 && !slices.Contains(roles, id.Role) {
		names := make([]string, len(roles))
		for i, r := range roles {
			names[i] = string(r)
		}
		return id, fmt.Errorf("%w: node %s is a %s, this needs a %s", ErrForbidden, id.NodeID, id.Role, strings.Join(names, " or "))
	}
	return id, nil
}

// validID checks node and cluster IDs: they end up in certificate subjects
// and error messages, so they are kept to a boring, printable alphabet.
func validID(s string) error {
	if s == "" || len(s) > 128 {
		return fmt.Errorf("must be 1 to 128 characters")
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '-' || c == '_' || c == '.') && i > 0:
		default:
			return fmt.Errorf("may only contain letters, digits, '-', '_' and '.', and must start with a letter or digit")
		}
	}
	return nil
}
