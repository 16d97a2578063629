package control

import (
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

func TestCheckSourceNamesTheFlag(t *testing.T) {
	pull := func(url string) *model.Source {
		return &model.Source{Name: "infra", Kind: model.SourceGitPull, URL: url}
	}
	for _, tc := range []struct {
		name string
		src  *model.Source
		cred *api.SourceCredentials
		want string // "" means accepted
	}{
		{"https token URL", pull("https://git.example.com/ops/stacks.git"), &api.SourceCredentials{Token: "t"}, ""},
		{"user without password", pull("https://deploy@git.example.com/ops/stacks.git"), nil, ""},
		{"password in the URL", pull("https://deploy:hunter2@git.example.com/ops/stacks.git"), nil, "--token-file"},
		{"SSH key without known_hosts", pull("git@git.example.com:ops/stacks.git"), &api.SourceCredentials{SSHKey: []byte("k")}, "--known-hosts"},
		{"token and SSH key", pull("git@git.example.com:ops/stacks.git"), &api.SourceCredentials{Token: "t", SSHKey: []byte("k"), KnownHosts: []byte("h")}, "not both"},
		{"no URL", pull(""), nil, "--url"},
		{"interval too short", &model.Source{Name: "infra", Kind: model.SourceGitPull, URL: "file:///r", Interval: spec.Duration(time.Second)}, nil, "--interval"},
		{"path outside the repository", &model.Source{Name: "infra", Kind: model.SourceGitPull, URL: "file:///r", Path: "../x"}, nil, "--path"},
		{"relative folder", &model.Source{Name: "local", Kind: model.SourceDir, URL: "stacks"}, nil, "--dir"},
		{"push with a URL", &model.Source{Name: "apps", Kind: model.SourceGitPush, URL: "file:///r"}, nil, "no URL"},
		{"bad name", &model.Source{Name: "Infra!", Kind: model.SourceGitPush}, nil, "invalid source name"},
		{"ftp URL", pull("ftp://x/y"), nil, "not ftp://"},
		{"a path given as --url", pull("/srv/stacks"), nil, "--dir"},
		{"http URL", pull("http://git.example.com/ops/stacks.git"), nil, ""},
		{"ssh URL", pull("ssh://git@git.example.com/ops/stacks.git"), nil, ""},
		{"git URL", pull("git://git.example.com/ops/stacks.git"), nil, ""},
		{"https URL without a host", pull("https:///ops/stacks.git"), nil, "names no host"},
		{"CA with https", &model.Source{Name: "infra", Kind: model.SourceGitPull, URL: "https://git.internal/s.git", CA: testCA(t)}, nil, ""},
		{"CA with ssh", &model.Source{Name: "infra", Kind: model.SourceGitPull, URL: "git@git.internal:s.git", CA: testCA(t)}, nil, "--ca-file is for https://"},
		{"CA that is no certificate", &model.Source{Name: "infra", Kind: model.SourceGitPull, URL: "https://git.internal/s.git", CA: "hello"}, nil, "no PEM certificate"},
		{"CA on a folder", &model.Source{Name: "local", Kind: model.SourceDir, URL: "/srv/stacks", CA: testCA(t)}, nil, "--ca-file is for --url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkSource(tc.src, &api.SourceAddRequest{Source: tc.src, Credentials: tc.cred})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want one naming %q", err, tc.want)
			case tc.want != "" && strings.Contains(err.Error(), "hunter2"):
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

// testCA is a CA certificate, PEM.
func testCA(t *testing.T) string {
	t.Helper()
	root, err := ca.NewRootCA("test-cluster")
	if err != nil {
		t.Fatal(err)
	}
	return string(root.CertPEM())
}
