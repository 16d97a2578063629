package endpoint

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/api"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// storeWith is a store holding context "prod" (tcp, with TLS files) and "lab" (ssh),
// with current as the current context.
func storeWith(t *testing.T, current string) *Store {
	t.Helper()
	s := NewStore(t.TempDir())
	for _, c := range []Context{
		{Name: "prod", Endpoint: Endpoint{Host: "tcp://m1:4270", TLSCACert: "/c/ca.pem", TLSCert: "/c/cert.pem", TLSKey: "/c/key.pem"}},
		{Name: "lab", Endpoint: Endpoint{Host: "ssh://root@lab"}},
	} {
		if err := s.Create(c); err != nil {
			t.Fatal(err)
		}
	}
	if current != "" {
		if err := s.Use(current); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestResolvePrecedence(t *testing.T) {
	for _, tt := range []struct {
		name     string
		flags    Flags
		env      map[string]string
		current  string
		wantHost string
		wantCtx  string
	}{
		{"nothing: the local socket", Flags{}, nil, "", api.DefaultHost, ""},
		{"the current context", Flags{}, nil, "lab", "ssh://root@lab", "lab"},
		{"BERTH_CONTEXT over the current one", Flags{}, map[string]string{EnvContext: "prod"}, "lab", "tcp://m1:4270", "prod"},
		{"BERTH_HOST over BERTH_CONTEXT", Flags{}, map[string]string{EnvHost: "unix:///b.sock", EnvContext: "prod"}, "lab", "unix:///b.sock", ""},
		{"--context over BERTH_HOST", Flags{Context: "lab"}, map[string]string{EnvHost: "unix:///b.sock"}, "", "ssh://root@lab", "lab"},
		{"-H over everything", Flags{Host: "unix:///h.sock", HostSet: true}, map[string]string{EnvHost: "unix:///b.sock", EnvContext: "lab"}, "prod", "unix:///h.sock", ""},
		{"context use default", Flags{Context: DefaultContext}, nil, "lab", api.DefaultHost, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, name, err := Resolve(tt.flags, env(tt.env), storeWith(t, tt.current))
			if err != nil {
				t.Fatal(err)
			}
			if e.Host != tt.wantHost || name != tt.wantCtx {
				t.Fatalf("host %q context %q, want %q %q", e.Host, name, tt.wantHost, tt.wantCtx)
			}
		})
	}
}

func TestResolveTLSFiles(t *testing.T) {
	s := storeWith(t, "")
	for _, tt := range []struct {
		name   string
		flags  Flags
		env    map[string]string
		wantCA string
		err    string
	}{
		{"BERTH_CERT_PATH", Flags{Host: "tcp://m:4270", HostSet: true}, map[string]string{EnvCertPath: "/certs"}, filepath.Join("/certs", CAFile), ""},
		{"the context's files over BERTH_CERT_PATH", Flags{Context: "prod"}, map[string]string{EnvCertPath: "/certs"}, "/c/ca.pem", ""},
		{"flags over the context's", Flags{Context: "prod", TLSCACert: "/f/ca", TLSCert: "/f/c", TLSKey: "/f/k"}, nil, "/f/ca", ""},
		{"some flags only", Flags{TLSCACert: "/f/ca"}, nil, "", "give all of --tlscacert, --tlscert and --tlskey, or none"},
		{"-H and --context", Flags{Host: "unix:///h.sock", HostSet: true, Context: "lab"}, nil, "", "give -H or --context, not both: a context names a host"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, _, err := Resolve(tt.flags, env(tt.env), s)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || e.TLSCACert != tt.wantCA {
				t.Fatalf("CA %q, %v; want %q", e.TLSCACert, err, tt.wantCA)
			}
		})
	}
}

func TestTCPHostWithoutCertificateSaysWhatToGive(t *testing.T) {
	_, err := Endpoint{Host: "tcp://m1:4270"}.Client()
	if err == nil || !strings.Contains(err.Error(), "berth ca client-cert --out DIR") {
		t.Fatalf("err = %v", err)
	}
}

func TestStoreRefusals(t *testing.T) {
	s := storeWith(t, "prod")
	for _, tt := range []struct {
		name string
		call func() error
		want string
	}{
		{"a name in use", func() error { return s.Create(Context{Name: "prod", Endpoint: Endpoint{Host: "unix:///x"}}) },
			"context prod already exists: remove it first (berth context rm prod) or choose another name"},
		{"the built-in name", func() error { return s.Create(Context{Name: DefaultContext}) },
			`context "default" is the built-in one (the local socket, or BERTH_HOST): choose another name`},
		{"a name that is a path", func() error { return s.Create(Context{Name: "../x"}) },
			`invalid context name "../x": use letters, digits, '_', '.', '+' and '-', starting with a letter or digit, at most 64`},
		{"use of a context that is not", func() error { return s.Use("nosuch") }, "no such context: nosuch ('berth context ls' lists them)"},
		{"removing the current one", func() error { return s.Remove("prod", false) },
			"context prod is in use: 'berth context use default' first, or remove it with --force"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v\nwant %q", err, tt.want)
			}
		})
	}
	if _, err := s.Get("nosuch"); !errors.Is(err, ErrNoContext) {
		t.Fatalf("Get of a context that is not: %v", err)
	}
}

func TestStoreRemoveCurrentWithForce(t *testing.T) {
	s := storeWith(t, "prod")
	if err := s.Remove("prod", true); err != nil {
		t.Fatal(err)
	}
	cur, err := s.Current()
	if err != nil || cur != "" {
		t.Fatalf("current after removing it: %q %v, want the default", cur, err)
	}
	list, err := s.List()
	if err != nil || len(list) != 1 || list[0].Name != "lab" {
		t.Fatalf("contexts left: %v %v", list, err)
	}
}
