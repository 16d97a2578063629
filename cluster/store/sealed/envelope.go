package sealed

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
)

// Envelope of a sealed value (Seal, and raft log entries):
//
//	offset  size  field
//	0       4     magic "BSEL"
//	4       1     version (1)
//	5       4     data key id, big endian
//	9       12    AES-GCM nonce, random
//	21      n+16  AES-256-GCM ciphertext and tag
//
// The 9-byte header is authenticated as additional data, followed by any
// context the caller binds (the log store binds index, term, type and
// field), so a sealed value cannot be moved to another place unnoticed.
//
// Random 96-bit nonces keep a data key safe for about 2^32 seals (NIST
// SP 800-38D); rotate the data key (RotateDEK) well before that.
const (
	envelopeMagic     = "BSEL"
	envelopeVersion   = 1
	envelopeHeaderLen = 4 + 1 + 4
	envelopeOverhead  = envelopeHeaderLen + gcmNonceSize + gcmTagSize
)

// Seal encrypts plaintext with the current data key into a
// self-describing envelope.
func (k *Keyring) Seal(plaintext []byte) ([]byte, error) {
	return k.seal(plaintext, nil)
}

// Open authenticates and decrypts an envelope made by Seal, with whichever
// data key sealed it. It fails with ErrLocked, ErrNotSealed,
// ErrUnknownKeyID or ErrTampered.
func (k *Keyring) Open(sealed []byte) ([]byte, error) {
	return k.open(sealed, nil)
}

// seal returns the envelope of plaintext, bound to binding (extra authenticated data).
func (k *Keyring) seal(plaintext, binding []byte) ([]byte, error) {
	id, dk, err := k.current()
	if err != nil {
		return nil, err
	}
	out := make([]byte, envelopeHeaderLen+gcmNonceSize, envelopeOverhead+len(plaintext))
	copy(out, envelopeMagic)
	out[4] = envelopeVersion
	binary.BigEndian.PutUint32(out[5:envelopeHeaderLen], id)
	nonce := out[envelopeHeaderLen:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return dk.aead.Seal(out, nonce, plaintext, aad(out[:envelopeHeaderLen], binding)), nil
}

func (k *Keyring) open(sealed, binding []byte) ([]byte, error) {
	if len(sealed) < envelopeHeaderLen || string(sealed[:4]) != envelopeMagic {
		return nil, ErrNotSealed
	}
	if v := sealed[4]; v != envelopeVersion {
		return nil, fmt.Errorf("%w: envelope version %d", ErrNotSealed, v)
	}
	if len(sealed) < envelopeOverhead {
		return nil, fmt.Errorf("%w: envelope truncated", ErrTampered)
	}
	id := binary.BigEndian.Uint32(sealed[5:9])
	dk, err := k.key(id)
	if err != nil {
		return nil, err
	}
	header := sealed[:envelopeHeaderLen]
	nonce := sealed[envelopeHeaderLen : envelopeHeaderLen+gcmNonceSize]
	plain, err := dk.aead.Open(nil, nonce, sealed[envelopeHeaderLen+gcmNonceSize:], aad(header, binding))
	if err != nil {
		return nil, fmt.Errorf("%w (key id %d)", ErrTampered, id)
	}
	return plain, nil
}

func aad(header, binding []byte) []byte {
	if len(binding) == 0 {
		return header
	}
	a := make([]byte, 0, len(header)+len(binding))
	return append(append(a, header...), binding...)
}
