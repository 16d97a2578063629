package sealed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyringFile is the name of the keyring inside the directory handed to
// Create and Open (by convention DATA/raft, next to the raft stores).
const KeyringFile = "keys.json"

// keyFileVersion is bumped on any incompatible change of keyFile.
const keyFileVersion = 1

// keyFile is the keyring as stored on disk. It is JSON so an operator can
// see what is there (autolock on or off, which data keys exist) without
// tooling; every secret in it is either wrapped or, with autolock off,
// the plain KEK that Swarm also keeps beside its data key.
type keyFile struct {
	Version  int  `json:"version"`
	Autolock bool `json:"autolock"`
	// KEK is the key-encryption key in the clear, present only when
	// autolock is off. With autolock on it is the unlock key and lives
	// nowhere on disk.
	KEK []byte `json:"kek,omitempty"`
	// KEKCheck is derived one-way from the KEK so Unlock can tell a wrong
	// key from a damaged keyring before touching any data.
	KEKCheck   []byte       `json:"kek_check"`
	CurrentDEK uint32       `json:"current_dek"`
	DEKs       []wrappedDEK `json:"deks"`
}

// wrappedDEK is one data key sealed under the KEK. Old data keys stay
// after a rotation so entries sealed with them still open.
type wrappedDEK struct {
	ID uint32 `json:"id"`
	// Wrapped is nonce || AES-256-GCM(wrap key, DEK), bound to ID.
	Wrapped []byte `json:"wrapped"`
}

// validate checks the structure only; whether the KEK fits is Unlock's job.
func (f *keyFile) validate() error {
	if f.Version != keyFileVersion {
		return fmt.Errorf("unsupported keyring version %d (this berth reads version %d)", f.Version, keyFileVersion)
	}
	if f.Autolock && len(f.KEK) != 0 {
		return errors.New("keyring is inconsistent: autolock is on but a plain key-encryption key is present")
	}
	if !f.Autolock && len(f.KEK) != kekSize {
		return errors.New("keyring is inconsistent: autolock is off but the key-encryption key is missing or has the wrong size")
	}
	if len(f.KEKCheck) != kekCheckSize {
		return errors.New("keyring is inconsistent: key check value is missing or has the wrong size")
	}
	if len(f.DEKs) == 0 {
		return errors.New("keyring holds no data keys")
	}
	seen := make(map[uint32]bool, len(f.DEKs))
	current := false
	for _, d := range f.DEKs {
		if seen[d.ID] {
			return fmt.Errorf("keyring is inconsistent: data key %d appears twice", d.ID)
		}
		seen[d.ID] = true
		if d.ID == f.CurrentDEK {
			current = true
		}
	}
	if !current {
		return fmt.Errorf("keyring is inconsistent: current data key %d is missing", f.CurrentDEK)
	}
	return nil
}

func readKeyFile(path string) (*keyFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read keyring: %w", err)
	}
	var f keyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("read keyring %s: %w", path, err)
	}
	if err := f.validate(); err != nil {
		return nil, fmt.Errorf("read keyring %s: %w", path, err)
	}
	return &f, nil
}

// writeKeyFile replaces the keyring atomically: a crash leaves either the
// old or the new file, never a torn one, because losing the keyring means
// losing the cluster state. With exclusive set it refuses to replace an
// existing keyring (Create must never orphan sealed data).
func writeKeyFile(path string, f *keyFile, exclusive bool) (err error) {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode keyring: %w", err)
	}
	data = append(data, '\n')

	dir := filepath.Dir(path)
	// CreateTemp makes the file 0600; Chmod guards against an odd umask
	// or filesystem default all the same.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write keyring: %w", err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write keyring: %w", err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write keyring: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write keyring: sync: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write keyring: %w", err)
	}

	if exclusive {
		// link(2) fails if the target exists, which rename(2) would not.
		if err = os.Link(tmpName, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("keyring %s already exists: %w", path, fs.ErrExist)
			}
			return fmt.Errorf("write keyring: %w", err)
		}
		_ = os.Remove(tmpName)
	} else if err = os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("write keyring: %w", err)
	}
	return syncDir(dir)
}

// syncDir makes the rename or link durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync keyring directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync keyring directory: %w", err)
	}
	return nil
}
