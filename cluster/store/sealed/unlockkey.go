package sealed

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// Unlock keys look like Swarm's SWMKEY-1-... so operators recognise them,
// but carry berth's own prefix so a Docker key pasted by mistake is
// reported as malformed rather than as merely wrong.
const (
	unlockKeyPrefix  = "BERTHKEY-"
	unlockKeyVersion = "1"
)

// kekSize is the size of a key-encryption key and of the random part of
// an unlock key: with autolock on the unlock key is the KEK.
const kekSize = 32

var unlockKeyEncoding = base64.RawURLEncoding

// formatUnlockKey renders a KEK as BERTHKEY-1-<base64url>.
func formatUnlockKey(kek []byte) string {
	return unlockKeyPrefix + unlockKeyVersion + "-" + unlockKeyEncoding.EncodeToString(kek)
}

// parseUnlockKey checks the shape of an unlock key and returns its key
// bytes. Surrounding white space (a trailing newline from stdin or a
// terminal paste) is ignored. Errors wrap ErrMalformedKey and never echo
// the input, which may be a real key with a typo.
func parseUnlockKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: the key is empty", ErrMalformedKey)
	}
	rest, ok := strings.CutPrefix(s, unlockKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: expected a key of the form %s%s-...", ErrMalformedKey, unlockKeyPrefix, unlockKeyVersion)
	}
	version, body, ok := strings.Cut(rest, "-")
	if !ok {
		return nil, fmt.Errorf("%w: missing version", ErrMalformedKey)
	}
	if version != unlockKeyVersion {
		return nil, fmt.Errorf("%w: unsupported key version (this berth understands version %s)", ErrMalformedKey, unlockKeyVersion)
	}
	key, err := unlockKeyEncoding.DecodeString(body)
	if err != nil {
		// The decoder's error names the offending byte offset only.
		return nil, fmt.Errorf("%w: invalid characters in key: %v", ErrMalformedKey, err)
	}
	if len(key) != kekSize {
		return nil, fmt.Errorf("%w: key has %d bytes, want %d (truncated copy?)", ErrMalformedKey, len(key), kekSize)
	}
	return key, nil
}

// ValidateUnlockKey reports whether s is a well-formed unlock key,
// without needing a keyring; the CLI uses it to fail fast before a call.
func ValidateUnlockKey(s string) error {
	_, err := parseUnlockKey(s)
	return err
}

// NewUnlockKey returns a fresh random unlock key. A cluster that shares
// one unlock key across managers generates it once (on the leader) and
// hands it to each manager's Keyring.SetUnlockKey.
func NewUnlockKey() (string, error) {
	kek, err := randomBytes(kekSize)
	if err != nil {
		return "", err
	}
	return formatUnlockKey(kek), nil
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("read random bytes: %w", err)
	}
	return b, nil
}
