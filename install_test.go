package berth_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/testenv"
)

// `make install` lays out what README "Install" says, the unit passes systemd's own
// check, and the installed daemon accepts the installed settings file.
func TestMakeInstall(t *testing.T) {
	for _, cmd := range []string{"make", "systemd-analyze", "man"} {
		testenv.RequireCommand(t, cmd, "make install is checked with it")
	}
	root := t.TempDir()
	dirs := map[string]string{
		"PREFIX": root, "SYSTEMDDIR": filepath.Join(root, "systemd"), "ETCDIR": filepath.Join(root, "etc"),
	}
	install := func() {
		args := []string{"-s", "install"}
		for k, v := range dirs {
			args = append(args, k+"="+v)
		}
		if out, err := exec.Command("make", args...).CombinedOutput(); err != nil {
			t.Fatalf("make install: %v\n%s", err, out)
		}
	}
	install()
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{
		{"bin/berth", 0o755}, {"bin/berth-logdriver", 0o755}, {"systemd/berth.service", 0o644},
		{"etc/berth/daemon.yaml", 0o644}, {"share/man/man1/berth.1", 0o644}, {"share/man/man1/berth-daemon.1", 0o644},
		{"share/bash-completion/completions/berth", 0o644}, {"share/zsh/site-functions/_berth", 0o644},
		{"share/fish/vendor_completions.d/berth.fish", 0o644},
	} {
		st, err := os.Stat(filepath.Join(root, f.path))
		if err != nil {
			t.Errorf("installed %s: %v", f.path, err)
		} else if st.Mode().Perm() != f.mode {
			t.Errorf("%s has mode %v, want %v", f.path, st.Mode().Perm(), f.mode)
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "share/bash-completion/completions/berth")); err != nil || !strings.Contains(string(b), "__start_berth") {
		t.Errorf("the bash completion is no script of berth's: %v\n%.200s", err, b)
	}
	unit := filepath.Join(root, "systemd", "berth.service")
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(root, "etc", "berth", "daemon.yaml")
	if want := "ExecStart=" + filepath.Join(root, "bin", "berth") + " daemon --config " + config + "\n"; !strings.Contains(string(b), want) {
		t.Errorf("unit has no line %q:\n%s", want, b)
	}
	verify := exec.Command("systemd-analyze", "verify", unit)
	verify.Env = append(os.Environ(), "MANPATH="+filepath.Join(root, "share", "man"))
	if out, err := verify.CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	if out, err := exec.Command(filepath.Join(root, "bin", "berth"), "daemon", "--config", config, "--validate").CombinedOutput(); err != nil || string(out) != "configuration OK\n" {
		t.Errorf("installed daemon --validate: %v\n%s", err, out)
	}
	// The operator's settings survive the next install.
	if err := os.WriteFile(config, []byte("log-level: debug\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	install()
	if b, _ := os.ReadFile(config); string(b) != "log-level: debug\n" {
		t.Errorf("make install replaced the settings file: %q", b)
	}
}
