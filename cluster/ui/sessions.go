package ui

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sync"
	"time"
)

const (
	// TokenTTL is how long a login link works (once).
	TokenTTL = 5 * time.Minute
	// SessionTTL is how long the session a login link opens lasts.
	SessionTTL = 12 * time.Hour
	// maxPending bounds the tokens and sessions one manager keeps, so that a script
	// asking for links in a loop cannot grow its memory without end.
	maxPending = 4096
)

// Sessions are a manager's login tokens and the sessions they opened. Only hashes of
// the secrets are kept: a heap dump gives no one a session.
type Sessions struct {
	now func() time.Time

	mu       sync.Mutex
	tokens   map[[sha256.Size]byte]time.Time
	sessions map[[sha256.Size]byte]time.Time
}

// NewSessions returns an empty store; now is the clock (nil: time.Now).
func NewSessions(now func() time.Time) *Sessions {
	if now == nil {
		now = time.Now
	}
	return &Sessions{now: now, tokens: map[[sha256.Size]byte]time.Time{}, sessions: map[[sha256.Size]byte]time.Time{}}
}

// IssueToken makes a login token that works once, until the time it returns.
func (s *Sessions) IssueToken() (string, time.Time, error) {
	return s.add(s.tokens, TokenTTL)
}

// Redeem spends a login token and opens a session: the session's secret (the
// cookie's value) and its expiry. ok is false for a token that is unknown, used or
// expired.
func (s *Sessions) Redeem(token string) (session string, expires time.Time, ok bool) {
	if !s.take(token) {
		return "", time.Time{}, false
	}
	session, expires, err := s.add(s.sessions, SessionTTL)
	if err != nil {
		return "", time.Time{}, false
	}
	return session, expires, true
}

// Valid reports whether session is an open session.
func (s *Sessions) Valid(session string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.sessions[sha256.Sum256([]byte(session))]
	return ok && s.now().Before(exp)
}

func (s *Sessions) take(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := sha256.Sum256([]byte(token))
	exp, ok := s.tokens[key]
	delete(s.tokens, key)
	return ok && s.now().Before(exp)
}

func (s *Sessions) add(m map[[sha256.Size]byte]time.Time, ttl time.Duration) (string, time.Time, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("make a login secret: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.prune(now)
	if len(s.tokens)+len(s.sessions) >= maxPending {
		return "", time.Time{}, fmt.Errorf("this manager holds %d open dashboard logins already: wait for some to expire (links last %s)", maxPending, TokenTTL)
	}
	exp := now.Add(ttl)
	m[sha256.Sum256([]byte(secret))] = exp
	return secret, exp, nil
}

func (s *Sessions) prune(now time.Time) {
	for _, m := range []map[[sha256.Size]byte]time.Time{s.tokens, s.sessions} {
		for k, exp := range m {
			if !now.Before(exp) {
				delete(m, k)
			}
		}
	}
}
