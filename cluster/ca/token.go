package ca

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"strings"
)

const (
	tokenPrefix  = "BERTH"
	tokenVersion = 1
	// SecretLen is the length of a join token secret: 128 random bits in
	// base36, like Swarm's.
	SecretLen = 25
)

// Token is a join token: BERTH-1-<CA digest>-<secret>. The digest lets the
// joiner authenticate the cluster before sending anything; the secret lets
// the cluster authenticate the joiner. The role is not in the token: the
// cluster keeps one token per role and tells them apart by the secret
// (MatchRole), so a token cannot be edited into a manager token.
//
// String redacts the secret so a Token printed by mistake (in a log line, in
// an error, with %v) does not leak it; Encode gives the full token.
type Token struct {
	Version  int
	CADigest string
	Secret   string
}

// NewJoinToken makes a new token for role pinning root. Each call draws a
// fresh secret, so the worker and manager tokens differ and rotating a
// token is calling it again (same digest, new secret); see RotateJoinToken.
// role is checked but not encoded in the token.
func NewJoinToken(root *RootCA, role Role) (Token, error) {
	if root == nil {
		return Token{}, fmt.Errorf("new join token: no root CA")
	}
	if !role.Valid() {
		return Token{}, fmt.Errorf("%w: %q", ErrInvalidRole, role)
	}
	return newToken(root.Digest())
}

// RotateJoinToken returns a token with the same CA digest and a new secret.
func RotateJoinToken(old Token) (Token, error) {
	if !validDigest(old.CADigest) {
		return Token{}, fmt.Errorf("%w: rotate: the token has no valid CA digest", ErrInvalidToken)
	}
	return newToken(old.CADigest)
}

func newToken(digest string) (Token, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Token{}, fmt.Errorf("generate join token secret: %w", err)
	}
	return Token{Version: tokenVersion, CADigest: digest, Secret: base36(b[:], SecretLen)}, nil
}

// errNotToken deliberately does not echo the input: a mistyped token is
// still mostly a secret.
var errNotToken = fmt.Errorf("%w: not a berth join token: expected %s-%d-<digest>-<secret>", ErrInvalidToken, tokenPrefix, tokenVersion)

// ParseJoinToken parses a token as printed by `berth join-token`.
// Surrounding white space (from copy and paste) is ignored. Errors wrap
// ErrInvalidToken and never contain the input.
func ParseJoinToken(s string) (Token, error) {
	parts := strings.Split(strings.TrimSpace(s), "-")
	if len(parts) != 4 || parts[0] != tokenPrefix {
		return Token{}, errNotToken
	}
	if parts[1] != "1" {
		if strings.Trim(parts[1], "0123456789") == "" && parts[1] != "" {
			return Token{}, fmt.Errorf("%w: join token version %s is not supported (this berth reads version %d)", ErrInvalidToken, parts[1], tokenVersion)
		}
		return Token{}, errNotToken
	}
	if !validDigest(parts[2]) {
		return Token{}, fmt.Errorf("%w: the CA digest must be %d characters of [0-9a-z] (truncated copy?)", ErrInvalidToken, DigestLen)
	}
	if len(parts[3]) != SecretLen || !isBase36(parts[3]) {
		return Token{}, fmt.Errorf("%w: the secret must be %d characters of [0-9a-z] (truncated copy?)", ErrInvalidToken, SecretLen)
	}
	return Token{Version: tokenVersion, CADigest: parts[2], Secret: parts[3]}, nil
}

// Encode returns the full token, secret included. Show it only to the
// operator (`berth join-token`), never in logs, errors or API listings.
func (t Token) Encode() string {
	return fmt.Sprintf("%s-%d-%s-%s", tokenPrefix, t.Version, t.CADigest, t.Secret)
}

// String returns the token with its secret redacted.
func (t Token) String() string {
	return fmt.Sprintf("%s-%d-%s-<redacted>", tokenPrefix, t.Version, t.CADigest)
}

// GoString is String, so that %#v does not print the secret either.
func (t Token) GoString() string { return "ca.Token(" + t.String() + ")" }

// MatchRole tells which of the cluster's current tokens secret belongs to.
// Both comparisons always run and are constant-time, so the answer's timing
// reveals neither how much of the secret was right nor which role it was
// closer to. A stored token with an empty secret (not set) never matches.
func MatchRole(secret string, worker, manager Token) (Role, bool) {
	w := eqSecret(secret, worker.Secret)
	m := eqSecret(secret, manager.Secret)
	// Worker first: should both stored secrets ever be equal, the token
	// grants the lesser role.
	switch {
	case w == 1:
		return RoleWorker, true
	case m == 1:
		return RoleManager, true
	}
	return "", false
}

func eqSecret(given, stored string) int {
	// ConstantTimeCompare of two empty strings is 1; an unset stored
	// secret must not let an empty secret in.
	nonEmpty := subtle.ConstantTimeLessOrEq(1, len(stored))
	return subtle.ConstantTimeCompare([]byte(given), []byte(stored)) & nonEmpty
}

// VerifyJoinToken is the manager's check of a join request: it parses raw,
// rejects a token of another cluster (its digest is not the current CA's:
// ErrWrongCluster) and matches the secret against the current worker and
// manager tokens (no match: ErrInvalidToken). The role the joiner gets is
// the one returned here.
func VerifyJoinToken(raw string, worker, manager Token) (Role, error) {
	t, err := ParseJoinToken(raw)
	if err != nil {
		return "", err
	}
	// The digest is public: a plain comparison is fine.
	if t.CADigest != worker.CADigest && t.CADigest != manager.CADigest {
		return "", fmt.Errorf("join token %w: its CA digest %s is not this cluster's", ErrWrongCluster, t.CADigest)
	}
	role, ok := MatchRole(t.Secret, worker, manager)
	if !ok {
		return "", fmt.Errorf("%w: it matches neither the worker nor the manager token of this cluster (rotated?)", ErrInvalidToken)
	}
	return role, nil
}

// Repin returns the token with the same secret pinning the CA with digest: a
// root rotation changes what tokens pin, not who they admit.
func (t Token) Repin(digest string) (Token, error) {
	if !validDigest(digest) {
		return Token{}, fmt.Errorf("%w: the CA digest must be %d characters of [0-9a-z]", ErrInvalidToken, DigestLen)
	}
	t.CADigest = digest
	return t, nil
}
