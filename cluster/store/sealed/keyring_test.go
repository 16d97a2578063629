package sealed

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestKeyringRoundTrip(t *testing.T) {
	for _, autolock := range []bool{false, true} {
		name := map[bool]string{false: "autolock off", true: "autolock on"}[autolock]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			kr, key, err := Create(dir, autolock)
			if err != nil {
				t.Fatal(err)
			}
			if autolock != (key != "") {
				t.Fatalf("Create(autolock=%v) returned key %v", autolock, key != "")
			}
			if kr.Locked() {
				t.Fatal("fresh keyring is locked")
			}
			sealed, err := kr.Seal(marker)
			if err != nil {
				t.Fatal(err)
			}

			// What a restarted manager sees.
			kr2 := mustOpenKeyring(t, dir)
			if kr2.Autolock() != autolock {
				t.Fatalf("Autolock() = %v after reopen", kr2.Autolock())
			}
			if kr2.Locked() != autolock {
				t.Fatalf("Locked() = %v after reopen, want %v", kr2.Locked(), autolock)
			}
			if autolock {
				if _, err := kr2.Open(sealed); !errors.Is(err, ErrLocked) {
					t.Fatalf("Open while locked: %v, want ErrLocked", err)
				}
				if _, err := kr2.Seal(marker); !errors.Is(err, ErrLocked) {
					t.Fatalf("Seal while locked: %v, want ErrLocked", err)
				}
				if err := kr2.Unlock(key); err != nil {
					t.Fatalf("Unlock: %v", err)
				}
				if kr2.Locked() {
					t.Fatal("still locked after Unlock")
				}
			}
			if err := kr2.Unlock(key); !errors.Is(err, ErrNotLocked) {
				t.Fatalf("second Unlock: %v, want ErrNotLocked", err)
			}
			got, err := kr2.Open(sealed)
			if err != nil {
				t.Fatalf("Open after reopen: %v", err)
			}
			if !bytes.Equal(got, marker) {
				t.Fatalf("Open = %q, want %q", got, marker)
			}
		})
	}
}

func TestLockedErrorMessage(t *testing.T) {
	// The API passes this through verbatim; the issue fixes its wording.
	const want = "this node is locked: run `berth unlock`"
	if ErrLocked.Error() != want {
		t.Fatalf("ErrLocked = %q, want %q", ErrLocked, want)
	}
}

func TestUnlockRefusesBadKeys(t *testing.T) {
	dir := t.TempDir()
	_, key := mustCreate(t, dir, true)
	other, _ := NewUnlockKey()
	tests := []struct {
		name string
		key  string
		want error
	}{
		{"another node's key", other, ErrWrongKey},
		{"one character changed", flipLastChar(key), ErrWrongKey},
		{"empty", "", ErrMalformedKey},
		{"truncated", key[:len(key)-1], ErrMalformedKey},
		{"docker key", strings.Replace(key, "BERTHKEY", "SWMKEY", 1), ErrMalformedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr := mustOpenKeyring(t, dir)
			err := kr.Unlock(tt.key)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Unlock = %v, want %v", err, tt.want)
			}
			if !kr.Locked() {
				t.Fatal("a refused key unlocked the keyring")
			}
			if strings.Contains(err.Error(), strings.TrimPrefix(key, "BERTHKEY-1-")[:16]) {
				t.Fatalf("error %q contains key material", err)
			}
		})
	}
	// And the right key still works after all that.
	if err := mustOpenKeyring(t, dir).Unlock(key); err != nil {
		t.Fatalf("Unlock with the right key: %v", err)
	}
}

// flipLastChar changes the last base64 character of a key, keeping it well
// formed (the last character of 32 bytes in unpadded base64 carries only
// 4 bits, so change one before it).
func flipLastChar(key string) string {
	b := []byte(key)
	i := len(b) - 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestLockedKeyringRefusesKeyOperations(t *testing.T) {
	dir := t.TempDir()
	mustCreate(t, dir, true)
	kr := mustOpenKeyring(t, dir)
	ops := map[string]func() error{
		"SetAutolock(true)":  func() error { _, err := kr.SetAutolock(true); return err },
		"SetAutolock(false)": func() error { _, err := kr.SetAutolock(false); return err },
		"RotateUnlockKey":    func() error { _, err := kr.RotateUnlockKey(); return err },
		"RotateDEK":          kr.RotateDEK,
		"UnlockKey":          func() error { _, err := kr.UnlockKey(); return err },
		"SetUnlockKey": func() error {
			k, _ := NewUnlockKey()
			return kr.SetUnlockKey(k)
		},
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, ErrLocked) {
			t.Errorf("%s on a locked keyring: %v, want ErrLocked", name, err)
		}
	}
}

func TestRotateUnlockKey(t *testing.T) {
	dir := t.TempDir()
	kr, oldKey := mustCreate(t, dir, true)
	sealed, err := kr.Seal(marker)
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := kr.RotateUnlockKey()
	if err != nil {
		t.Fatal(err)
	}
	if newKey == oldKey {
		t.Fatal("rotation returned the old key")
	}
	if cur, _ := kr.UnlockKey(); cur != newKey {
		t.Fatal("UnlockKey does not return the rotated key")
	}
	// The running keyring keeps working.
	if _, err := kr.Open(sealed); err != nil {
		t.Fatalf("Open after rotation: %v", err)
	}

	if err := mustOpenKeyring(t, dir).Unlock(oldKey); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("old key after rotation: %v, want ErrWrongKey", err)
	}
	kr2 := mustOpenKeyring(t, dir)
	if err := kr2.Unlock(newKey); err != nil {
		t.Fatalf("new key after rotation: %v", err)
	}
	got, err := kr2.Open(sealed)
	if err != nil || !bytes.Equal(got, marker) {
		t.Fatalf("data sealed before the rotation: %q, %v", got, err)
	}
}

func TestRotateUnlockKeyNeedsAutolock(t *testing.T) {
	kr, _ := mustCreate(t, t.TempDir(), false)
	if _, err := kr.RotateUnlockKey(); !errors.Is(err, ErrAutolockOff) {
		t.Fatalf("RotateUnlockKey with autolock off: %v, want ErrAutolockOff", err)
	}
	if _, err := kr.UnlockKey(); !errors.Is(err, ErrAutolockOff) {
		t.Fatalf("UnlockKey with autolock off: %v, want ErrAutolockOff", err)
	}
}

func TestSetAutolock(t *testing.T) {
	dir := t.TempDir()
	kr, _ := mustCreate(t, dir, false)
	sealed, err := kr.Seal(marker)
	if err != nil {
		t.Fatal(err)
	}

	// off -> on: a key comes back, the plain KEK leaves the disk.
	key1, err := kr.SetAutolock(true)
	if err != nil {
		t.Fatal(err)
	}
	if ValidateUnlockKey(key1) != nil {
		t.Fatalf("SetAutolock(true) returned a malformed key")
	}
	if again, err := kr.SetAutolock(true); err != nil || again != key1 {
		t.Fatalf("SetAutolock(true) twice rotated the key or failed: %v", err)
	}
	assertKeyFile(t, dir, true)
	kr2 := mustOpenKeyring(t, dir)
	if !kr2.Locked() {
		t.Fatal("autolocked keyring opens unlocked")
	}
	if err := kr2.Unlock(key1); err != nil {
		t.Fatal(err)
	}

	// on -> off: opens unlocked, the unlock key is gone for good.
	if key, err := kr2.SetAutolock(false); err != nil || key != "" {
		t.Fatalf("SetAutolock(false) = %q, %v", key, err)
	}
	assertKeyFile(t, dir, false)
	kr3 := mustOpenKeyring(t, dir)
	if kr3.Locked() {
		t.Fatal("keyring with autolock off opens locked")
	}
	if got, err := kr3.Open(sealed); err != nil || !bytes.Equal(got, marker) {
		t.Fatalf("Open after autolock off: %q, %v", got, err)
	}

	// off -> on again: a new key, the first one is worthless.
	key2, err := kr3.SetAutolock(true)
	if err != nil {
		t.Fatal(err)
	}
	if key2 == key1 {
		t.Fatal("re-enabling autolock reused the old unlock key")
	}
	if err := mustOpenKeyring(t, dir).Unlock(key1); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("first key after off/on: %v, want ErrWrongKey", err)
	}
	kr4 := mustOpenKeyring(t, dir)
	if err := kr4.Unlock(key2); err != nil {
		t.Fatal(err)
	}
	if got, err := kr4.Open(sealed); err != nil || !bytes.Equal(got, marker) {
		t.Fatalf("Open after off/on: %q, %v", got, err)
	}
}

func TestSetUnlockKeySharesOneKeyAcrossManagers(t *testing.T) {
	clusterKey, err := NewUnlockKey()
	if err != nil {
		t.Fatal(err)
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	a, _ := mustCreate(t, dirA, false)
	if err := a.SetUnlockKey(clusterKey); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateWithUnlockKey(dirB, clusterKey); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateWithUnlockKey(t.TempDir(), "nope"); !errors.Is(err, ErrMalformedKey) {
		t.Fatalf("CreateWithUnlockKey(malformed): %v, want ErrMalformedKey", err)
	}
	for _, dir := range []string{dirA, dirB} {
		kr := mustOpenKeyring(t, dir)
		if !kr.Locked() {
			t.Fatalf("%s: not locked", dir)
		}
		if err := kr.Unlock(clusterKey); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		assertKeyFile(t, dir, true)
	}
}

func TestRotateDEK(t *testing.T) {
	dir := t.TempDir()
	kr, key := mustCreate(t, dir, true)
	before, err := kr.Seal([]byte("before"))
	if err != nil {
		t.Fatal(err)
	}
	cur0, _ := kr.DataKeyIDs()
	if err := kr.RotateDEK(); err != nil {
		t.Fatal(err)
	}
	after, err := kr.Seal([]byte("after"))
	if err != nil {
		t.Fatal(err)
	}
	cur1, all := kr.DataKeyIDs()
	if cur1 == cur0 || !slices.Equal(all, []uint32{cur0, cur1}) {
		t.Fatalf("after rotation: current %d, all %v (was %d)", cur1, all, cur0)
	}
	if id := keyIDOf(t, before); id != cur0 {
		t.Fatalf("entry sealed before rotation names key %d, want %d", id, cur0)
	}
	if id := keyIDOf(t, after); id != cur1 {
		t.Fatalf("entry sealed after rotation names key %d, want %d", id, cur1)
	}

	kr2 := mustOpenKeyring(t, dir)
	if err := kr2.Unlock(key); err != nil {
		t.Fatal(err)
	}
	for want, sealed := range map[string][]byte{"before": before, "after": after} {
		got, err := kr2.Open(sealed)
		if err != nil || string(got) != want {
			t.Fatalf("Open(%s) = %q, %v", want, got, err)
		}
	}
	if c, _ := kr2.DataKeyIDs(); c != cur1 {
		t.Fatalf("current data key after reopen = %d, want %d", c, cur1)
	}
}

func keyIDOf(t *testing.T, sealed []byte) uint32 {
	t.Helper()
	if len(sealed) < envelopeHeaderLen {
		t.Fatal("short envelope")
	}
	return uint32(sealed[5])<<24 | uint32(sealed[6])<<16 | uint32(sealed[7])<<8 | uint32(sealed[8])
}

// assertKeyFile reads the keyring file as bytes and checks its mode and
// that the KEK is on disk exactly when autolock is off.
func assertKeyFile(t *testing.T, dir string, autolock bool) {
	t.Helper()
	path := filepath.Join(dir, KeyringFile)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := st.Mode().Perm(); mode != 0o600 {
		t.Fatalf("keyring mode %v, want 0600", mode)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if _, has := raw["kek"]; has == autolock {
		t.Fatalf("autolock=%v but kek field present=%v", autolock, has)
	}

	// Compare against what the running keyring holds in memory, in
	// every encoding it could plausibly have been written in.
	kr := mustOpenKeyring(t, dir)
	if autolock {
		return // locked: nothing to compare with here, see below
	}
	// The plain KEK is meant to be there with autolock off; the data
	// keys never are.
	if !bytes.Contains(data, []byte(base64.StdEncoding.EncodeToString(kr.kek))) {
		t.Fatal("autolock off but the KEK on disk is not the one in use")
	}
	needles := map[string][]byte{}
	for id, dk := range kr.deks {
		for name, n := range encodings("dek", dk.raw) {
			needles[fmt.Sprintf("%s %d", name, id)] = n
		}
	}
	assertNotOnDisk(t, dir, needles)

	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Fatalf("temporary file left behind: %s", e.Name())
		}
	}
}

func encodings(name string, key []byte) map[string][]byte {
	return map[string][]byte{
		name + " raw":            key,
		name + " std base64":     []byte(base64.StdEncoding.EncodeToString(key)),
		name + " url base64":     []byte(base64.RawURLEncoding.EncodeToString(key)),
		name + " as unlock key":  []byte(formatUnlockKey(key)),
		name + " raw std base64": []byte(base64.RawStdEncoding.EncodeToString(key)),
	}
}

func TestKeyringFileNeverHoldsUnlockKey(t *testing.T) {
	for _, how := range []string{"create", "set autolock", "rotate", "rotate dek"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			var kr *Keyring
			var key string
			var err error
			switch how {
			case "create":
				kr, key = mustCreate(t, dir, true)
			case "set autolock":
				kr, _ = mustCreate(t, dir, false)
				key, err = kr.SetAutolock(true)
			case "rotate":
				kr, _ = mustCreate(t, dir, true)
				key, err = kr.RotateUnlockKey()
			case "rotate dek":
				kr, key = mustCreate(t, dir, true)
				err = kr.RotateDEK()
			}
			if err != nil {
				t.Fatal(err)
			}
			raw, err := parseUnlockKey(key)
			if err != nil {
				t.Fatal(err)
			}
			needles := encodings("kek", raw)
			for id, dk := range kr.deks {
				for name, n := range encodings("dek", dk.raw) {
					needles[fmt.Sprintf("%s %d", name, id)] = n
				}
			}
			assertNotOnDisk(t, dir, needles)
			assertKeyFile(t, dir, true)
		})
	}
}

func TestCreateRefusesExistingKeyring(t *testing.T) {
	dir := t.TempDir()
	mustCreate(t, dir, false)
	before, _ := os.ReadFile(filepath.Join(dir, KeyringFile))
	if _, _, err := Create(dir, true); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create: %v, want fs.ErrExist", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, KeyringFile))
	if !bytes.Equal(before, after) {
		t.Fatal("second Create changed the keyring")
	}
}

func TestOpenMissingKeyring(t *testing.T) {
	if _, err := Open(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open(empty dir): %v, want fs.ErrNotExist", err)
	}
}

func TestOpenDamagedKeyring(t *testing.T) {
	tests := []struct {
		name     string
		autolock bool
		damage   func(f *keyFile)
	}{
		{"plain kek replaced", false, func(f *keyFile) { f.KEK = bytes.Repeat([]byte{7}, kekSize) }},
		{"wrapped dek flipped", false, func(f *keyFile) { f.DEKs[0].Wrapped[20] ^= 1 }},
		{"dek ids swapped", false, func(f *keyFile) {
			f.DEKs[0].Wrapped, f.DEKs[1].Wrapped = f.DEKs[1].Wrapped, f.DEKs[0].Wrapped
		}},
		{"kek on disk with autolock", true, func(f *keyFile) { f.KEK = bytes.Repeat([]byte{7}, kekSize) }},
		{"current dek missing", false, func(f *keyFile) { f.CurrentDEK = 9 }},
		{"future version", false, func(f *keyFile) { f.Version = 2 }},
		{"no check value", true, func(f *keyFile) { f.KEKCheck = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			kr, _ := mustCreate(t, dir, tt.autolock)
			if err := kr.RotateDEK(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, KeyringFile)
			data, _ := os.ReadFile(path)
			var f keyFile
			if err := json.Unmarshal(data, &f); err != nil {
				t.Fatal(err)
			}
			tt.damage(&f)
			data, _ = json.Marshal(&f)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir)
			if err == nil {
				t.Fatal("Open accepted a damaged keyring")
			}
			if errors.Is(err, ErrWrongKey) {
				t.Fatalf("damage reported as a wrong key: %v", err)
			}
			t.Logf("error: %v", err)
		})
	}

	t.Run("autolock on, wrapped dek flipped", func(t *testing.T) {
		dir := t.TempDir()
		_, key := mustCreate(t, dir, true)
		path := filepath.Join(dir, KeyringFile)
		data, _ := os.ReadFile(path)
		var f keyFile
		_ = json.Unmarshal(data, &f)
		f.DEKs[0].Wrapped[20] ^= 1
		data, _ = json.Marshal(&f)
		_ = os.WriteFile(path, data, 0o600)
		err := mustOpenKeyring(t, dir).Unlock(key)
		if err == nil || errors.Is(err, ErrWrongKey) {
			t.Fatalf("Unlock of a damaged keyring with the right key: %v, want a damage error", err)
		}
	})
}

// TestConcurrentUse seals and opens from several goroutines while keys
// rotate, as raft and the API do; run with -race.
func TestConcurrentUse(t *testing.T) {
	kr, _ := mustCreate(t, t.TempDir(), true)
	done := make(chan struct{})
	errs := make(chan error, 8)
	for range 4 {
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				s, err := kr.Seal(marker)
				if err == nil {
					_, err = kr.Open(s)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range 5 {
		if err := kr.RotateDEK(); err != nil {
			t.Fatal(err)
		}
		if _, err := kr.RotateUnlockKey(); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestKeyringPrintsNoKeyMaterial(t *testing.T) {
	kr, key := mustCreate(t, t.TempDir(), true)
	raw, _ := parseUnlockKey(key)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(verb, kr)
		for name, n := range encodings("kek", raw) {
			if strings.Contains(out, string(n)) {
				t.Fatalf("%s prints the %s", verb, name)
			}
		}
		if strings.Contains(out, "[]byte") || strings.Contains(out, "raw:") {
			t.Fatalf("%s dumps fields: %s", verb, out)
		}
	}
	t.Log(kr)
}
