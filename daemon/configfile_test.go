package daemon_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/berthd/berth/daemon"
)

func TestApplyConfigFile(t *testing.T) {
	type settings struct {
		addr    string
		timeout time.Duration
		snaps   uint64
		debug   bool
	}
	cases := []struct {
		name    string
		file    string // "" : no file
		args    []string
		want    settings
		wantErr string
	}{
		{name: "no file", want: settings{addr: "0.0.0.0:4270"}},
		{name: "every kind of value", file: "listen-addr: 127.0.0.1:1\napply-timeout: 3s\nsnapshots: 5\ndebug: true\n",
			want: settings{addr: "127.0.0.1:1", timeout: 3 * time.Second, snaps: 5, debug: true}},
		{name: "a flag wins over the file", file: "listen-addr: 127.0.0.1:1\n", args: []string{"--listen-addr", "10.0.0.1:2"},
			want: settings{addr: "10.0.0.1:2"}},
		{name: "only comments", file: "# listen-addr: x\n", want: settings{addr: "0.0.0.0:4270"}},
		{name: "a misspelt key", file: "listen-adr: x\n", wantErr: `unknown key "listen-adr" (did you mean listen-addr?)`},
		{name: "an unknown key", file: "colour: blue\n", wantErr: `unknown key "colour" (the keys are the daemon's flags without --: apply-timeout, debug, listen-addr, snapshots)`},
		{name: "the file's own flag", file: "config: /x\n", wantErr: `unknown key "config"`},
		{name: "a list", file: "listen-addr: [a, b]\n", wantErr: "key listen-addr: write one value, as on the command line"},
		{name: "a bad value", file: "apply-timeout: soon\n", wantErr: `key apply-timeout: invalid argument "soon"`},
		{name: "every problem at once", file: "colour: x\napply-timeout: soon\n", wantErr: `key apply-timeout: invalid argument "soon" for "--apply-timeout" flag: time: invalid duration "soon"; unknown key "colour"`},
		{name: "not a mapping", file: "- a\n", wantErr: "not a YAML mapping of settings"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got settings
			fs := pflag.NewFlagSet("daemon", pflag.ContinueOnError)
			fs.StringVar(&got.addr, "listen-addr", "0.0.0.0:4270", "")
			fs.DurationVar(&got.timeout, "apply-timeout", 0, "")
			fs.Uint64Var(&got.snaps, "snapshots", 0, "")
			fs.BoolVar(&got.debug, "debug", false, "")
			fs.String("config", "", "")
			if err := fs.Parse(c.args); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "daemon.yaml")
			if c.file != "" {
				if err := os.WriteFile(file, []byte(c.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := daemon.ApplyConfigFile(fs, file, false, "config")
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.Is(err, daemon.ErrConfigFile) || !strings.Contains(err.Error(), file) {
					t.Fatalf("err = %v, want one naming %s and saying %q", err, file, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("settings = %+v, want %+v", got, c.want)
			}
		})
	}
}

// A file named on the command line must exist; the default one may not.
func TestApplyConfigFileRequired(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "daemon.yaml")
	fs := pflag.NewFlagSet("daemon", pflag.ContinueOnError)
	if err := daemon.ApplyConfigFile(fs, missing, false); err != nil {
		t.Errorf("default file missing: %v", err)
	}
	if err := daemon.ApplyConfigFile(fs, missing, true); !errors.Is(err, daemon.ErrConfigFile) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("given file missing: err = %v", err)
	}
}
