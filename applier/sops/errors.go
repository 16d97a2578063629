package sops

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels for what a caller explains differently; the errors that wrap them say which
// file and what to do.
var (
	// ErrNotRecipient: none of the identities given can open the document's data key.
	ErrNotRecipient = errors.New("encrypted for other age recipients")
	// ErrMAC: the document's content does not match its MAC, or a value does not
	// decrypt: it was changed after sops wrote it.
	ErrMAC = errors.New("MAC mismatch")
	// ErrUnsupported: a SOPS document this reader cannot open (no age stanza, Shamir
	// key groups, an option it does not implement).
	ErrUnsupported = errors.New("unsupported SOPS document")
)

// NotRecipientError lists the recipients a document was encrypted for.
type NotRecipientError struct{ Recipients []string }

func (e *NotRecipientError) Error() string {
	return fmt.Sprintf("it is encrypted for %s, and no identity given is one of them", strings.Join(e.Recipients, ", "))
}

func (e *NotRecipientError) Is(target error) bool { return target == ErrNotRecipient }
