package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A SOPS file in a stack read from the local disk is refused, not deployed as its
// ciphertext: only a source holds an age key.
func TestValidateRefusesLocalSOPSFiles(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"compose.yaml": "services:\n  app:\n    image: nginx:1\n    secrets: [password]\nsecrets:\n  password:\n    file: ./password.txt\n",
		"password.txt": sopsVectorText(t, "password.enc.txt"),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := runBerth(t, "", "validate", "-c", filepath.Join(dir, "compose.yaml"))
	want := "secrets.password.file: cannot use ./password.txt: it is encrypted with SOPS; berth decrypts SOPS files only in a source's stacks"
	if r.code != 2 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "--age-key-file") {
		t.Fatalf("validate of a stack with a SOPS secret file: want exit 2 and %q\n%s", want, r)
	}
}
