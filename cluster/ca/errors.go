package ca

import "errors"

// Sentinel errors, matched with errors.Is. Messages are written for
// operators because the API passes them through. None of them, nor any
// error this package wraps around them, carries a private key or a token
// secret.
var (
	// ErrInvalidToken is returned for input that is not a berth join token
	// at all, and for a well-formed token whose secret matches neither of
	// the cluster's current tokens (wrong or rotated token).
	ErrInvalidToken = errors.New("invalid join token")

	// ErrDigestMismatch is returned when the CA a manager presents is not
	// the one a join token pins. See DigestMismatchError.
	ErrDigestMismatch = errors.New("CA digest mismatch")

	// ErrWrongCluster is returned for a certificate or token that belongs to
	// another cluster.
	ErrWrongCluster = errors.New("belongs to another cluster")

	// ErrNoClientCert is returned by RequireIdentity when the peer presented
	// no verified client certificate.
	ErrNoClientCert = errors.New("a client certificate signed by the cluster CA is required")

	// ErrForbidden is returned when the peer's role (from its certificate)
	// is not allowed to do what it asked.
	ErrForbidden = errors.New("permission denied")

	// ErrInvalidRole is returned for a role other than manager or worker.
	ErrInvalidRole = errors.New("invalid role: must be manager or worker")

	// ErrInvalidCSR is returned for a certificate signing request that does
	// not parse, whose signature does not verify, or whose key is weak.
	ErrInvalidCSR = errors.New("invalid certificate signing request")

	// ErrInvalidCert is returned for PEM or certificates that are not what
	// the caller said they are (not a CA, not a berth node certificate, a key
	// that does not match its certificate).
	ErrInvalidCert = errors.New("invalid certificate")

	// ErrExpired is returned when the root CA is outside its validity period
	// and so cannot issue certificates.
	ErrExpired = errors.New("certificate expired or not yet valid")
)
