package sealed

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

const (
	dekSize      = 32 // AES-256
	kekCheckSize = 32
	gcmNonceSize = 12
	gcmTagSize   = 16
)

// HKDF labels. The KEK is never used directly: one derived key wraps the
// data keys, another yields the check value, so the value stored on disk
// reveals nothing usable about the wrapping key.
const (
	labelWrap  = "berth keyring v1: wrap data keys"
	labelCheck = "berth keyring v1: key check"
	dekAADTag  = "berth keyring v1: data key"
)

// Keyring holds a manager's data keys (DEKs) and the key-encryption key
// (KEK) that wraps them on disk. It is safe for concurrent use: raft reads
// and writes its stores from several goroutines while the API may rotate
// keys.
//
// A Keyring is either unlocked (it holds the KEK and the unwrapped DEKs in
// memory) or locked (autolock on and no unlock key given since start).
// While locked every operation that needs a key fails with ErrLocked.
type Keyring struct {
	path string

	mu   sync.RWMutex
	file *keyFile // what is on disk, always
	kek  []byte   // nil while locked
	deks map[uint32]*dataKey
}

// dataKey is an unwrapped DEK. The AEAD is built once because entries are
// sealed on raft's hot path; crypto/cipher's GCM is stateless after
// construction and so may be shared between goroutines.
type dataKey struct {
	raw  []byte
	aead cipher.AEAD
}

func newDataKey(raw []byte) (*dataKey, error) {
	aead, err := newGCM(raw)
	if err != nil {
		return nil, err
	}
	return &dataKey{raw: raw, aead: aead}, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("init AES: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("init AES-GCM: %w", err)
	}
	return aead, nil
}

// Create makes a new keyring with one data key in dir (created 0700 if
// missing). With autolock on it returns the unlock key, which is the only
// copy: the caller must show it to the operator once and not store it.
// With autolock off the unlock key is "". Create refuses to replace an
// existing keyring (the error wraps fs.ErrExist), because that would make
// everything sealed under it unreadable.
func Create(dir string, autolock bool) (kr *Keyring, unlockKey string, err error) {
	kek, err := randomBytes(kekSize)
	if err != nil {
		return nil, "", fmt.Errorf("create keyring: %w", err)
	}
	kr, err = create(dir, kek, autolock)
	if err != nil {
		return nil, "", err
	}
	if autolock {
		unlockKey = formatUnlockKey(kek)
	}
	return kr, unlockKey, nil
}

// CreateWithUnlockKey makes a new autolocked keyring whose KEK is the
// given unlock key. A manager joining an autolocked cluster uses it so
// the cluster keeps one unlock key and the KEK never touches its disk.
func CreateWithUnlockKey(dir, unlockKey string) (*Keyring, error) {
	kek, err := parseUnlockKey(unlockKey)
	if err != nil {
		return nil, err
	}
	return create(dir, kek, true)
}

func create(dir string, kek []byte, autolock bool) (*Keyring, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create keyring: %w", err)
	}
	raw, err := randomBytes(dekSize)
	if err != nil {
		return nil, fmt.Errorf("create keyring: %w", err)
	}
	dk, err := newDataKey(raw)
	if err != nil {
		return nil, fmt.Errorf("create keyring: %w", err)
	}
	const firstID = 1
	deks := map[uint32]*dataKey{firstID: dk}
	f, err := buildKeyFile(kek, autolock, deks, firstID)
	if err != nil {
		return nil, fmt.Errorf("create keyring: %w", err)
	}
	path := filepath.Join(dir, KeyringFile)
	if err := writeKeyFile(path, f, true); err != nil {
		return nil, fmt.Errorf("create keyring: %w", err)
	}
	return &Keyring{path: path, file: f, kek: kek, deks: deks}, nil
}

// Open loads the keyring in dir. With autolock off the result is ready to
// use; with autolock on it is locked until Unlock is given the unlock
// key (check with Locked). A missing keyring yields an error wrapping
// fs.ErrNotExist, which tells a fresh node from a locked one.
func Open(dir string) (*Keyring, error) {
	path := filepath.Join(dir, KeyringFile)
	f, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	kr := &Keyring{path: path, file: f}
	if !f.Autolock {
		if err := kr.unlockWith(f.KEK); err != nil {
			// The KEK on disk must fit its own keyring; if it does not,
			// the file is damaged, not the operator mistaken, so do not
			// let the error read as ErrWrongKey.
			if errors.Is(err, ErrWrongKey) {
				return nil, fmt.Errorf("keyring %s is damaged: the stored key-encryption key does not match its check value", path)
			}
			return nil, err
		}
	}
	return kr, nil
}

// Unlock unlocks an autolocked keyring with the operator's unlock key.
// An already unlocked keyring yields ErrNotLocked whatever the input, a
// badly formed key ErrMalformedKey, and a well-formed key that is not this
// keyring's (also: one that has been rotated away) ErrWrongKey.
func (k *Keyring) Unlock(unlockKey string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kek != nil {
		return ErrNotLocked
	}
	kek, err := parseUnlockKey(unlockKey)
	if err != nil {
		return err
	}
	return k.unlockWith(kek)
}

// unlockWith checks kek against the stored check value and unwraps all
// data keys. Caller holds k.mu (or owns k exclusively).
func (k *Keyring) unlockWith(kek []byte) error {
	wrapKey, check, err := deriveKEKKeys(kek)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(check, k.file.KEKCheck) != 1 {
		return ErrWrongKey
	}
	wrap, err := newGCM(wrapKey)
	if err != nil {
		return err
	}
	deks := make(map[uint32]*dataKey, len(k.file.DEKs))
	for _, w := range k.file.DEKs {
		raw, err := unwrapDEK(wrap, w)
		if err != nil {
			// The check value matched, so the key is right and the
			// keyring itself is damaged.
			return fmt.Errorf("keyring %s is damaged: data key %d: %w", k.path, w.ID, err)
		}
		dk, err := newDataKey(raw)
		if err != nil {
			return fmt.Errorf("keyring %s: data key %d: %w", k.path, w.ID, err)
		}
		deks[w.ID] = dk
	}
	k.kek, k.deks = kek, deks
	return nil
}

// Locked reports whether the keyring waits for its unlock key.
func (k *Keyring) Locked() bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.kek == nil
}

// Autolock reports whether the keyring is protected by an unlock key.
// It is known even while locked.
func (k *Keyring) Autolock() bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.file.Autolock
}

// Path is the keyring file.
func (k *Keyring) Path() string { return k.path }

// String describes the keyring without key material, so that printing or
// logging one by accident (%v, %+v, slog) leaks nothing.
func (k *Keyring) String() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return fmt.Sprintf("keyring %s (autolock %v, locked %v, data key %d of %d)",
		k.path, k.file.Autolock, k.kek == nil, k.file.CurrentDEK, len(k.file.DEKs))
}

// GoString covers %#v, which would otherwise dump the fields.
func (k *Keyring) GoString() string { return k.String() }

// UnlockKey returns the current unlock key, for `berth unlock-key`.
func (k *Keyring) UnlockKey() (string, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.kek == nil {
		return "", ErrLocked
	}
	if !k.file.Autolock {
		return "", ErrAutolockOff
	}
	return formatUnlockKey(k.kek), nil
}

// SetAutolock turns autolock on or off. Turning it on re-wraps the data
// keys under a new KEK, drops the plain KEK from disk and returns the new
// unlock key (show it once, do not store it). Turning it off re-wraps them
// under a new KEK stored beside them, so the old unlock key is worthless
// from then on, and returns "". Asking for the current setting changes
// nothing; with autolock already on it returns the current unlock key.
func (k *Keyring) SetAutolock(on bool) (unlockKey string, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kek == nil {
		return "", ErrLocked
	}
	if on == k.file.Autolock {
		if on {
			return formatUnlockKey(k.kek), nil
		}
		return "", nil
	}
	kek, err := randomBytes(kekSize)
	if err != nil {
		return "", fmt.Errorf("set autolock: %w", err)
	}
	if err := k.rewrite(kek, on, k.deks, k.file.CurrentDEK); err != nil {
		return "", fmt.Errorf("set autolock: %w", err)
	}
	if on {
		return formatUnlockKey(kek), nil
	}
	return "", nil
}

// RotateUnlockKey re-wraps the data keys under a new random KEK and
// returns it as the new unlock key; the old key no longer unlocks this
// node. The sealed data is untouched: only the keyring is rewritten.
func (k *Keyring) RotateUnlockKey() (string, error) {
	kek, err := randomBytes(kekSize)
	if err != nil {
		return "", fmt.Errorf("rotate unlock key: %w", err)
	}
	if err := k.setKEK(kek); err != nil {
		return "", fmt.Errorf("rotate unlock key: %w", err)
	}
	return formatUnlockKey(kek), nil
}

// SetUnlockKey re-wraps the data keys under the given unlock key and turns
// autolock on. It is how every manager adopts the one cluster-wide unlock
// key that the leader generated (NewUnlockKey) and replicated.
func (k *Keyring) SetUnlockKey(unlockKey string) error {
	kek, err := parseUnlockKey(unlockKey)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kek == nil {
		return ErrLocked
	}
	if err := k.rewrite(kek, true, k.deks, k.file.CurrentDEK); err != nil {
		return fmt.Errorf("set unlock key: %w", err)
	}
	return nil
}

func (k *Keyring) setKEK(kek []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kek == nil {
		return ErrLocked
	}
	if !k.file.Autolock {
		return ErrAutolockOff
	}
	return k.rewrite(kek, true, k.deks, k.file.CurrentDEK)
}

// RotateDEK makes a new data key current for everything sealed from now
// on. Earlier data keys stay in the keyring so entries and snapshots
// sealed with them keep opening.
func (k *Keyring) RotateDEK() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kek == nil {
		return ErrLocked
	}
	var next uint32
	for id := range k.deks {
		next = max(next, id)
	}
	next++
	if next == 0 {
		return errors.New("rotate data key: key ids exhausted")
	}
	raw, err := randomBytes(dekSize)
	if err != nil {
		return fmt.Errorf("rotate data key: %w", err)
	}
	dk, err := newDataKey(raw)
	if err != nil {
		return fmt.Errorf("rotate data key: %w", err)
	}
	deks := maps.Clone(k.deks)
	deks[next] = dk
	if err := k.rewrite(k.kek, k.file.Autolock, deks, next); err != nil {
		return fmt.Errorf("rotate data key: %w", err)
	}
	return nil
}

// DataKeyIDs returns the id of the current data key and of all data keys
// held, ascending. It is known even while locked.
func (k *Keyring) DataKeyIDs() (current uint32, all []uint32) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	for _, d := range k.file.DEKs {
		all = append(all, d.ID)
	}
	slices.Sort(all)
	return k.file.CurrentDEK, all
}

// rewrite persists a new key state and only then adopts it in memory, so
// a failed write leaves the keyring exactly as it was. Caller holds k.mu.
func (k *Keyring) rewrite(kek []byte, autolock bool, deks map[uint32]*dataKey, current uint32) error {
	f, err := buildKeyFile(kek, autolock, deks, current)
	if err != nil {
		return err
	}
	if err := writeKeyFile(k.path, f, false); err != nil {
		return err
	}
	k.file, k.kek, k.deks = f, kek, deks
	return nil
}

// current returns the data key new data is sealed with.
func (k *Keyring) current() (uint32, *dataKey, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.kek == nil {
		return 0, nil, ErrLocked
	}
	id := k.file.CurrentDEK
	return id, k.deks[id], nil
}

// key returns the data key with the given id, for opening.
func (k *Keyring) key(id uint32) (*dataKey, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.kek == nil {
		return nil, ErrLocked
	}
	dk, ok := k.deks[id]
	if !ok {
		return nil, fmt.Errorf("%w (key id %d)", ErrUnknownKeyID, id)
	}
	return dk, nil
}

// buildKeyFile wraps every data key under kek with fresh nonces.
func buildKeyFile(kek []byte, autolock bool, deks map[uint32]*dataKey, current uint32) (*keyFile, error) {
	wrapKey, check, err := deriveKEKKeys(kek)
	if err != nil {
		return nil, err
	}
	wrap, err := newGCM(wrapKey)
	if err != nil {
		return nil, err
	}
	f := &keyFile{
		Version:    keyFileVersion,
		Autolock:   autolock,
		KEKCheck:   check,
		CurrentDEK: current,
	}
	if !autolock {
		f.KEK = kek
	}
	for _, id := range slices.Sorted(maps.Keys(deks)) {
		w, err := wrapDEK(wrap, id, deks[id].raw)
		if err != nil {
			return nil, err
		}
		f.DEKs = append(f.DEKs, w)
	}
	if err := f.validate(); err != nil {
		return nil, fmt.Errorf("internal error: %w", err)
	}
	return f, nil
}

func deriveKEKKeys(kek []byte) (wrapKey, check []byte, err error) {
	wrapKey, err = hkdf.Key(sha256.New, kek, nil, labelWrap, dekSize)
	if err != nil {
		return nil, nil, fmt.Errorf("derive wrapping key: %w", err)
	}
	check, err = hkdf.Key(sha256.New, kek, nil, labelCheck, kekCheckSize)
	if err != nil {
		return nil, nil, fmt.Errorf("derive key check: %w", err)
	}
	return wrapKey, check, nil
}

// dekAAD binds a wrapped data key to its id, so ids cannot be swapped in
// the file to make entries open under the wrong key.
func dekAAD(id uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte(dekAADTag), id)
}

func wrapDEK(wrap cipher.AEAD, id uint32, raw []byte) (wrappedDEK, error) {
	nonce, err := randomBytes(gcmNonceSize)
	if err != nil {
		return wrappedDEK{}, fmt.Errorf("wrap data key %d: %w", id, err)
	}
	return wrappedDEK{ID: id, Wrapped: wrap.Seal(nonce, nonce, raw, dekAAD(id))}, nil
}

func unwrapDEK(wrap cipher.AEAD, w wrappedDEK) ([]byte, error) {
	if len(w.Wrapped) < gcmNonceSize+gcmTagSize {
		return nil, errors.New("wrapped key is truncated")
	}
	nonce, ct := w.Wrapped[:gcmNonceSize], w.Wrapped[gcmNonceSize:]
	raw, err := wrap.Open(nil, nonce, ct, dekAAD(w.ID))
	if err != nil {
		return nil, errors.New("wrapped key fails authentication")
	}
	if len(raw) != dekSize {
		return nil, fmt.Errorf("unwrapped key has %d bytes, want %d", len(raw), dekSize)
	}
	return raw, nil
}
