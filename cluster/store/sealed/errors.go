package sealed

import "errors"

// Sentinel errors. Callers match them with errors.Is; the messages are
// written for operators because the API layer passes them through as is.
// None of them, nor any error this package wraps around them, carries key
// material.
var (
	// ErrLocked is returned by every operation that needs the data key
	// while the keyring is locked (autolock on, manager restarted, no
	// unlock key given yet).
	ErrLocked = errors.New("this node is locked: run `berth unlock`")

	// ErrNotLocked is returned by Unlock when there is nothing to unlock.
	ErrNotLocked = errors.New("this node is not locked")

	// ErrWrongKey is returned by Unlock when a well-formed unlock key is
	// not the one this keyring was locked with (for instance a key that
	// has since been rotated).
	ErrWrongKey = errors.New("invalid unlock key: it does not unlock this node (has it been rotated?)")

	// ErrMalformedKey is returned for input that is not an unlock key at
	// all (typo, truncated paste, a Docker SWMKEY).
	ErrMalformedKey = errors.New("malformed unlock key")

	// ErrAutolockOff is returned by operations that only make sense with
	// an unlock key (showing or rotating it) while autolock is off.
	ErrAutolockOff = errors.New("autolock is off: this node has no unlock key")

	// ErrUnknownKeyID is returned when sealed data names a data key that
	// the keyring does not hold.
	ErrUnknownKeyID = errors.New("sealed data names an unknown data key")

	// ErrTampered is returned when sealed data fails authentication: it
	// was corrupted, truncated, moved or modified.
	ErrTampered = errors.New("sealed data is corrupt or was tampered with")

	// ErrNotSealed is returned for data that does not carry the sealed
	// envelope at all.
	ErrNotSealed = errors.New("data is not sealed by berth (unknown format)")
)
