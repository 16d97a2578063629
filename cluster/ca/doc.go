// Package ca is berth's cluster certificate authority: the root CA that the
// managers keep in raft, the node certificates every node uses for mutual
// TLS, the join tokens that let a new node obtain one, and the pieces of
// renewal and root rotation.
//
// # Renewal and rotation
//
// A node renews its certificate, with a new key, from RenewAt on (two thirds
// of its life). A root rotation makes a new root that the old one cross-signs
// (CrossSign): certificates issued meanwhile are sent with the cross-signed
// copy, so nodes that still trust only the old root accept them, and nodes
// trust both roots (WithAdditionalRoots) until every node has rotated. Join
// tokens keep their secret and pin the new root (Token.Repin). Long-lived
// diallers read the roots of the moment (DynamicClientTLSConfig).
//
// # Trust model
//
// Every node-to-node connection is TLS 1.3 with certificates signed by the
// cluster's root CA. Who a peer is (node ID, role, cluster) is written into
// its certificate by the CA and read back from the verified certificate on
// every request; nothing a peer claims in a request or a CSR is ever taken
// as identity. See IssueNodeCert for the certificate fields and
// ParseNodeIdentity for how they are read back.
//
// # Joining
//
// A join token is BERTH-1-<CA digest>-<secret>. The joiner, which has no
// certificate yet, dials a manager with FetchAndVerifyCA: the manager
// presents its node certificate together with the CA certificate, the joiner
// pins the CA by the digest from the token and checks that the manager's
// certificate chains to it and carries the manager role, all inside the TLS
// handshake, before a single byte of the request (which carries the token
// secret) is sent. It then sends its CSR and the token over a connection
// built with ClientTLSConfig, with no client certificate.
//
// # Digest encoding
//
// A CA digest is the SHA-256 of the CA certificate's DER encoding, written
// as a lower-case base36 number zero-padded to 50 characters, the same shape
// as Docker Swarm's join tokens: only [0-9a-z], so it survives double-click
// selection, shells, URLs and being read aloud, and it is shorter than hex
// (64) or base32 (52).
//
// # How the API requires identities
//
// The manager's TCP port is served with
//
//	ServerTLSConfig(caCert, nodeCert, WithOptionalClientCert())
//
// so a joiner without a certificate can complete the handshake, while any
// certificate that is presented must verify against the cluster CA (a
// certificate of another CA fails the handshake). Every handler then calls
// RequireIdentity (HTTP) or RequireConnIdentity (other protocols sharing the
// port, such as raft) with the roles it accepts; only the join endpoint and
// Git webhooks (which authenticate by token or HMAC instead) skip it.
// Listeners that never serve joins use ServerTLSConfig without the option,
// which rejects certificate-less clients during the handshake. The local
// unix socket has no TLS: it is root-only and RequireIdentity does not apply.
package ca
