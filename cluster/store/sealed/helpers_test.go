package sealed

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// marker is the plaintext that must never reach the disk.
var marker = []byte("berth-plaintext-marker-secret-42")

func mustCreate(t testing.TB, dir string, autolock bool) (*Keyring, string) {
	t.Helper()
	kr, key, err := Create(dir, autolock)
	if err != nil {
		t.Fatalf("Create(autolock=%v): %v", autolock, err)
	}
	return kr, key
}

func mustOpenKeyring(t testing.TB, dir string) *Keyring {
	t.Helper()
	kr, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return kr
}

// findInFiles returns, for every needle, the files under dir that contain
// it. It reads every regular file in full: the point is to look at the
// bytes as an attacker with the disk would.
func findInFiles(t testing.TB, dir string, needles map[string][]byte) (found map[string][]string, scanned int) {
	t.Helper()
	found = map[string][]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		scanned++
		for name, needle := range needles {
			if bytes.Contains(data, needle) {
				rel, _ := filepath.Rel(dir, path)
				found[name] = append(found[name], rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", dir, err)
	}
	return found, scanned
}

// assertNotOnDisk fails for every needle found under dir.
func assertNotOnDisk(t testing.TB, dir string, needles map[string][]byte) {
	t.Helper()
	found, scanned := findInFiles(t, dir, needles)
	if scanned == 0 {
		t.Fatalf("scan %s: no files at all", dir)
	}
	for name, files := range found {
		t.Errorf("%s found on disk in %v", name, files)
	}
	if len(found) > 0 {
		return
	}
	t.Logf("scanned %d files under %s for %d needles: none found", scanned, dir, len(needles))
}
