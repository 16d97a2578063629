package daemon

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func archive(t *testing.T, names ...string) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o600, Size: 1, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return &b
}

// A restore takes what a backup holds and nothing else, into a folder without a node.
func TestRestoreBackup(t *testing.T) {
	snap := []string{"raft/snapshots/2-40-1700000000/meta.json", "raft/snapshots/2-40-1700000000/state.bin"}
	whole := append(append([]string{}, backupFiles...), snap...)
	cases := []struct {
		name  string
		files []string
		want  string // "" : restored
	}{
		{"a backup", whole, ""},
		{"a backup during a root rotation", append(append([]string{}, whole...), backupOptional...), ""},
		{"a file outside the data dir", append(append([]string{}, whole...), "../etc/passwd"), "is not part of a berth backup"},
		{"a snapshot folder that climbs", append(append([]string{}, backupFiles...), "raft/snapshots/../../x/meta.json"), "is not part of a berth backup"},
		{"another file", append(append([]string{}, whole...), "raft/raft.db"), "is not part of a berth backup"},
		{"no keyring", whole[:4], "lacks raft/keys.json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			err := RestoreBackup(archive(t, c.files...), dir)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range c.files {
					if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Mode().Perm() != 0o600 {
						t.Errorf("%s: %v, %v", f, st, err)
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one saying %q", err, c.want)
			}
		})
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, nodeFileName), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := RestoreBackup(archive(t, whole...), dir); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("restore over a node: %v", err)
	}
	if err := RestoreBackup(strings.NewReader("not gzip"), t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a berth backup") {
		t.Errorf("restore of text: %v", err)
	}
}
