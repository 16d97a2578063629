package applier

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/berthd/berth/internal/testenv"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/berthd/berth/internal/gittest"
)

const stackFile = "web/compose.yaml"

// remote is a repository published as a bare repository under root.
type remote struct {
	work *gittest.Repo
	root string
	bare string
}

// newRemote makes a repository with one commit on main, published as root/name.
func newRemote(t *testing.T, name string) *remote {
	t.Helper()
	r := &remote{work: gittest.New(t), root: t.TempDir()}
	r.bare = filepath.Join(r.root, name)
	r.commit("services:\n  web:\n    image: nginx:1\n")
	return r
}

// commit commits a new stack file on main, publishes it and returns the commit's SHA.
func (r *remote) commit(content string) string {
	r.work.Write(map[string]string{stackFile: content})
	h := r.work.Commit("stack " + content)
	r.work.Publish(r.bare)
	return h.String()
}

func (r *remote) fileURL() string { return "file://" + r.bare }

func (r *remote) head(t *testing.T) string {
	t.Helper()
	ref, err := r.work.Repo.Reference(plumbing.NewBranchReferenceName("main"), true)
	if err != nil {
		t.Fatal(err)
	}
	return ref.Hash().String()
}

func openMirror(t *testing.T, dir, url string) *Mirror {
	t.Helper()
	m, err := OpenMirror(dir, url)
	if err != nil {
		t.Fatalf("OpenMirror: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close mirror: %v", err)
		}
	})
	return m
}

func fetch(t *testing.T, m *Mirror, branch string, cred *Credentials) (string, bool) {
	t.Helper()
	sha, fetched, err := m.Fetch(t.Context(), branch, cred)
	if err != nil {
		t.Fatalf("Fetch %s: %v", branch, err)
	}
	return sha, fetched
}

// wantStack checks that the mirror serves the stack file of sha with content.
func wantStack(t *testing.T, m *Mirror, sha, content string) {
	t.Helper()
	fsys, got, err := m.Repository().TreeFS(sha)
	if err != nil {
		t.Fatalf("TreeFS %s: %v", sha, err)
	}
	if got != sha {
		t.Errorf("TreeFS SHA = %s, want %s", got, sha)
	}
	data, err := fs.ReadFile(fsys, stackFile)
	if err != nil {
		t.Fatalf("read %s at %s: %v", stackFile, sha, err)
	}
	if string(data) != content {
		t.Errorf("%s at %s = %q, want %q", stackFile, sha, data, content)
	}
}

func needGit(t *testing.T) {
	t.Helper()
	testenv.RequireCommand(t, "git", "the mirror's tests fetch from real repositories")
}

func TestMirrorFileRemote(t *testing.T) {
	needGit(t)
	r := newRemote(t, "stacks.git")
	m := openMirror(t, filepath.Join(t.TempDir(), "mirror"), r.fileURL())

	sha, fetched := fetch(t, m, "main", nil)
	if sha != r.head(t) || !fetched {
		t.Fatalf("Fetch = %s, %v; want %s, true", sha, fetched, r.head(t))
	}
	wantStack(t, m, sha, "services:\n  web:\n    image: nginx:1\n")
	if got, err := m.Repository().Resolve("origin/main"); err != nil || got != sha {
		t.Errorf("Resolve(origin/main) = %s, %v; want %s", got, err, sha)
	}

	if again, fetched := fetch(t, m, "main", nil); again != sha || fetched {
		t.Errorf("second Fetch = %s, %v; want %s, false", again, fetched, sha)
	}
}

func TestMirrorHTTPToken(t *testing.T) {
	const token = "glpat-s3cr3t-t0ken-value"
	r := newRemote(t, "ops/stacks.git")
	srv := gittest.NewHTTPBackend(t, r.root, gittest.WithToken(token))
	url := srv.RepoURL("ops/stacks.git")

	tests := []struct {
		name     string
		cred     *Credentials
		wantErr  error
		wantHint string
	}{
		{name: "good token", cred: &Credentials{Token: token}},
		{name: "good token, own user", cred: &Credentials{Username: "oauth2", Token: token}},
		{name: "bad token", cred: &Credentials{Token: "wrong-" + token}, wantErr: ErrAuthFailed, wantHint: "refused the token"},
		{name: "no token", cred: nil, wantErr: ErrAuthFailed, wantHint: "--token-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := openMirror(t, t.TempDir(), url)
			sha, fetched, err := m.Fetch(t.Context(), "main", tt.cred)
			if tt.wantErr == nil {
				if err != nil || sha != r.head(t) || !fetched {
					t.Fatalf("Fetch = %s, %v, %v; want %s, true", sha, fetched, err, r.head(t))
				}
				wantStack(t, m, sha, "services:\n  web:\n    image: nginx:1\n")
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Fetch error = %v, want %v", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("error shows the token: %v", err)
			}
			if !strings.Contains(err.Error(), tt.wantHint) || !strings.Contains(err.Error(), url) {
				t.Errorf("error %q should name %s and say %q", err, url, tt.wantHint)
			}
		})
	}
}

// TestMirrorPrivateCA fetches from an HTTPS server whose certificate no system
// trusts: refused with the fix (--ca-file) without the CA, fetched with it.
func TestMirrorPrivateCA(t *testing.T) {
	r := newRemote(t, "ops/stacks.git")
	srv := gittest.NewHTTPBackend(t, r.root, gittest.WithTLS())
	url := srv.RepoURL("ops/stacks.git")
	tests := []struct {
		name     string
		cred     *Credentials
		wantHint string // "" means fetched
	}{
		{name: "without the CA", cred: nil, wantHint: "--ca-file"},
		{name: "with the CA", cred: &Credentials{CABundle: srv.CAPEM}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := openMirror(t, t.TempDir(), url)
			sha, _, err := m.Fetch(t.Context(), "main", tt.cred)
			if tt.wantHint == "" {
				if err != nil || sha != r.head(t) {
					t.Fatalf("Fetch = %s, %v; want %s", sha, err, r.head(t))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantHint) {
				t.Fatalf("Fetch error = %v, want one saying %s", err, tt.wantHint)
			}
			t.Log(err)
		})
	}
}

// TestMirrorCAIsForHTTPS refuses a CA with a URL that is not https://, rather than
// ignoring it.
func TestMirrorCAIsForHTTPS(t *testing.T) {
	r := newRemote(t, "stacks.git")
	m := openMirror(t, t.TempDir(), r.fileURL())
	_, _, err := m.Fetch(t.Context(), "main", &Credentials{CABundle: []byte("pem")})
	if err == nil || !strings.Contains(err.Error(), "https://") {
		t.Fatalf("Fetch error = %v, want one saying the CA is for https:// URLs", err)
	}
}

// TestMirrorFetchesOnlyChanges follows a branch through new commits and a restart:
// an unchanged tip costs an ls-remote and no upload-pack.
func TestMirrorFetchesOnlyChanges(t *testing.T) {
	const token = "t0ken"
	cred := &Credentials{Token: token}
	r := newRemote(t, "stacks.git")
	srv := gittest.NewHTTPBackend(t, r.root, gittest.WithToken(token))
	url := srv.RepoURL("stacks.git")
	dir := filepath.Join(t.TempDir(), "mirrors", "infra")

	m, err := OpenMirror(dir, url)
	if err != nil {
		t.Fatal(err)
	}
	first, fetched := fetch(t, m, "main", cred)
	if !fetched || srv.UploadPacks() != 1 {
		t.Fatalf("first Fetch: fetched %v with %d upload-packs, want true with 1", fetched, srv.UploadPacks())
	}
	// Reading now makes go-git list the pack files, which the next fetch adds to.
	wantStack(t, m, first, "services:\n  web:\n    image: nginx:1\n")
	if sha, fetched := fetch(t, m, "main", cred); sha != first || fetched || srv.UploadPacks() != 1 {
		t.Errorf("unchanged tip: Fetch = %s, %v with %d upload-packs; want %s, false with 1", sha, fetched, srv.UploadPacks(), first)
	}

	second := r.commit("services:\n  web:\n    image: nginx:2\n")
	sha, fetched := fetch(t, m, "main", cred)
	if sha != second || !fetched || srv.UploadPacks() != 2 {
		t.Fatalf("new commit: Fetch = %s, %v with %d upload-packs; want %s, true with 2", sha, fetched, srv.UploadPacks(), second)
	}
	// The Repository that read before the fetch sees the new pack.
	wantStack(t, m, second, "services:\n  web:\n    image: nginx:2\n")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	reopened := openMirror(t, dir, url)
	if sha, fetched := fetch(t, reopened, "main", cred); sha != second || fetched || srv.UploadPacks() != 2 {
		t.Errorf("reopened: Fetch = %s, %v with %d upload-packs; want %s, false with 2", sha, fetched, srv.UploadPacks(), second)
	}
	wantStack(t, reopened, second, "services:\n  web:\n    image: nginx:2\n")
}

func TestMirrorFetchesTrackedBranchOnly(t *testing.T) {
	needGit(t)
	r := newRemote(t, "stacks.git")
	mainTip := r.head(t)
	r.work.Tag("v1", plumbing.NewHash(mainTip))
	devTip := r.commit("services:\n  web:\n    image: nginx:dev\n")
	r.work.Branch("dev", plumbing.NewHash(devTip))
	// main goes back to its first commit: devTip is on dev only.
	if err := r.work.Repo.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName("main"), plumbing.NewHash(mainTip))); err != nil {
		t.Fatal(err)
	}
	r.work.Publish(r.bare)
	tag, err := r.work.Repo.Tag("v1")
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	m := openMirror(t, dir, r.fileURL())
	if sha, _ := fetch(t, m, "main", nil); sha != mainTip {
		t.Fatalf("Fetch = %s, want %s", sha, mainTip)
	}

	repo, err := git.PlainOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := repo.References()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	err = refs.ForEach(func(ref *plumbing.Reference) error {
		if ref.Type() == plumbing.HashReference {
			names = append(names, ref.Name().String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"refs/remotes/origin/main"}; !slices.Equal(names, want) {
		t.Errorf("mirror references = %v, want %v", names, want)
	}
	if _, err := m.Repository().Resolve(devTip); !errors.Is(err, ErrUnknownRevision) {
		t.Errorf("Resolve(dev's commit) error = %v, want ErrUnknownRevision: only main is fetched", err)
	}
	if err := repo.Storer.HasEncodedObject(tag.Hash()); err == nil {
		t.Errorf("the mirror holds tag v1's object: tags must not be fetched")
	}
}

func TestMirrorBranchNotFound(t *testing.T) {
	needGit(t)
	r := newRemote(t, "stacks.git")
	r.work.Branch("dev", plumbing.NewHash(r.head(t)))
	r.work.Publish(r.bare)
	empty := filepath.Join(r.root, "empty.git")
	if _, err := git.PlainInit(empty, true); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, url, branch string
		want              []string
	}{
		{name: "unknown branch", url: r.fileURL(), branch: "prod", want: []string{`"prod"`, "dev, main"}},
		{name: "empty remote", url: "file://" + empty, branch: "main", want: []string{"empty", "push branch main"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := openMirror(t, t.TempDir(), tt.url)
			_, _, err := m.Fetch(t.Context(), tt.branch, nil)
			if !errors.Is(err, ErrBranchNotFound) {
				t.Fatalf("Fetch error = %v, want ErrBranchNotFound", err)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q should say %q", err, want)
				}
			}
		})
	}
}

func TestMirrorURLChange(t *testing.T) {
	needGit(t)
	old := newRemote(t, "old.git")
	moved := newRemote(t, "moved.git")
	movedTip := moved.commit("services:\n  web:\n    image: nginx:moved\n")
	dir := t.TempDir()

	m, err := OpenMirror(dir, old.fileURL())
	if err != nil {
		t.Fatal(err)
	}
	fetch(t, m, "main", nil)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m = openMirror(t, dir, moved.fileURL())
	if sha, fetched := fetch(t, m, "main", nil); sha != movedTip || !fetched {
		t.Errorf("Fetch after the URL change = %s, %v; want %s, true", sha, fetched, movedTip)
	}
	wantStack(t, m, movedTip, "services:\n  web:\n    image: nginx:moved\n")
	repo, err := git.PlainOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	origin, err := repo.Remote("origin")
	if err != nil {
		t.Fatal(err)
	}
	if got := origin.Config().URLs; !slices.Equal(got, []string{moved.fileURL()}) {
		t.Errorf("origin URLs = %v, want %s", got, moved.fileURL())
	}
}

func TestOpenMirrorErrors(t *testing.T) {
	busy := t.TempDir()
	if err := os.WriteFile(filepath.Join(busy, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir, url, want string
	}{
		{name: "not a URL", dir: t.TempDir(), url: "/srv/stacks", want: "not a Git URL"},
		{name: "no dir", dir: "", url: "https://git.example.com/stacks.git", want: "empty directory"},
		{name: "dir in use", dir: busy, url: "https://git.example.com/stacks.git", want: "neither empty nor a Git repository"},
		{name: "password hidden", dir: "", url: "https://bot:hunter2@git.example.com/stacks.git", want: "https://git.example.com/stacks.git"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := OpenMirror(tt.dir, tt.url)
			if err == nil {
				_ = m.Close()
				t.Fatalf("OpenMirror(%q, %q) succeeded", tt.dir, tt.url)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q should say %q and show no password", err, tt.want)
			}
		})
	}
}

func TestMirrorCredentialsMustFitTheURL(t *testing.T) {
	key := []byte("-----BEGIN OPENSSH PRIVATE KEY-----")
	tests := []struct {
		name, url string
		cred      *Credentials
		want      string
	}{
		{name: "key for https", url: "https://git.example.com/s.git", cred: &Credentials{SSHKey: key, KnownHosts: []byte("x")}, want: "give a token (--token-file)"},
		{name: "user without token", url: "https://git.example.com/s.git", cred: &Credentials{Username: "bot"}, want: "without a token"},
		{name: "token for ssh", url: "git@git.example.com:ops/s.git", cred: &Credentials{Token: "glpat-0123456789"}, want: "--ssh-key"},
		{name: "ssh without key", url: "ssh://git@git.example.com/ops/s.git", cred: nil, want: "--ssh-key"},
		{name: "ssh without known_hosts", url: "ssh://git@git.example.com/ops/s.git", cred: &Credentials{SSHKey: key}, want: "--known-hosts"},
		{name: "unreadable key", url: "ssh://git@git.example.com/ops/s.git", cred: &Credentials{SSHKey: key, KnownHosts: []byte("x")}, want: "--ssh-key"},
		{name: "token for file", url: "file:///srv/s.git", cred: &Credentials{Token: "glpat-0123456789"}, want: "take no credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := openMirror(t, t.TempDir(), tt.url)
			_, _, err := m.Fetch(t.Context(), "main", tt.cred)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Fetch error = %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestRedactURLs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://bot:hunter2@git.example.com/s.git", "https://git.example.com/s.git"},
		{"https://ghp_token@github.com/o/s.git", "https://github.com/o/s.git"},
		{"ssh://git@git.example.com:2222/o/s.git", "ssh://git@git.example.com:2222/o/s.git"},
		{"ssh://git:hunter2@git.example.com/o/s.git", "ssh://git.example.com/o/s.git"},
		{"git@github.com:o/s.git", "git@github.com:o/s.git"},
		{`Get "http://u:p@10.0.0.1/s.git/info/refs": refused, then HTTPS://x:y@h/z`, `Get "http://10.0.0.1/s.git/info/refs": refused, then HTTPS://h/z`},
	}
	for _, tt := range tests {
		if got := redactURLs(tt.in); got != tt.want {
			t.Errorf("redactURLs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMirrorUnreachableRemote(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	m := openMirror(t, t.TempDir(), "http://bot:hunter2@"+addr+"/stacks.git")
	_, _, err = m.Fetch(t.Context(), "main", &Credentials{Token: "sekret-token"})
	if err == nil {
		t.Fatal("Fetch from a closed port succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, "http://"+addr+"/stacks.git") || !strings.Contains(msg, "reachable") {
		t.Errorf("error %q should name the URL and say to check it is reachable", msg)
	}
	for _, secret := range []string{"hunter2", "bot:", "sekret-token"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q shows %q", msg, secret)
		}
	}
}

// silentServer accepts connections and never answers, like a remote behind a
// black-holing firewall that completes the TCP handshake.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

func TestMirrorFetchEndsWithContext(t *testing.T) {
	needGit(t)
	r := newRemote(t, "stacks.git")
	addr := silentServer(t)
	_, clientPEM := newSSHKey(t)
	hostKey, _ := newSSHKey(t)
	knownHosts := knownhosts.Line([]string{knownhosts.Normalize(addr)}, hostKey)

	tests := []struct {
		name, url string
		cred      *Credentials
		// timeout bounds the Fetch; 0 cancels its context before the call.
		timeout time.Duration
		want    error
	}{
		{name: "cancelled", url: r.fileURL(), want: context.Canceled},
		{name: "http server silent", url: "http://" + addr + "/stacks.git", timeout: 200 * time.Millisecond, want: context.DeadlineExceeded},
		{
			name: "ssh server silent", url: "ssh://git@" + addr + "/stacks.git",
			cred:    &Credentials{SSHKey: clientPEM, KnownHosts: []byte(knownHosts + "\n")},
			timeout: 200 * time.Millisecond, want: context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := openMirror(t, t.TempDir(), tt.url)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.timeout == 0 {
				cancel()
			} else {
				var stop context.CancelFunc
				ctx, stop = context.WithTimeout(ctx, tt.timeout)
				defer stop()
			}
			errc := make(chan error, 1)
			go func() {
				_, _, err := m.Fetch(ctx, "main", tt.cred)
				errc <- err
			}()
			select {
			case err := <-errc:
				if !errors.Is(err, tt.want) {
					t.Errorf("Fetch error = %v, want %v", err, tt.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Fetch did not return after its context ended")
			}
		})
	}
}

// newSSHKey makes an ed25519 key: its public half and its private half in OpenSSH
// PEM format.
func newSSHKey(t *testing.T) (ssh.PublicKey, []byte) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return sshPub, pem.EncodeToMemory(block)
}

// sshServer serves git-upload-pack over SSH to the holder of one client key, the way
// a Git host's SSH endpoint does.
type sshServer struct {
	addr string
	// hostKey is the server's ed25519 key, rsaHostKey the RSA key it also has.
	hostKey, rsaHostKey ssh.PublicKey
}

func startSSHServer(t *testing.T, clientKey ssh.PublicKey) *sshServer {
	t.Helper()
	needGit(t)
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(key.Marshal(), clientKey.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown public key")
		},
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaSigner, err := ssh.NewSignerFromKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AddHostKey(signer)
	cfg.AddHostKey(rsaSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				serveSSH(conn, cfg)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return &sshServer{addr: ln.Addr().String(), hostKey: signer.PublicKey(), rsaHostKey: rsaSigner.PublicKey()}
}

func serveSSH(conn net.Conn, cfg *ssh.ServerConfig) {
	defer func() { _ = conn.Close() }()
	sconn, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		return
	}
	defer func() { _ = sconn.Close() }()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		serveSession(ch, creqs)
	}
}

// serveSession runs the session's "git-upload-pack '<path>'" command.
func serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer func() { _ = ch.Close() }()
	for req := range reqs {
		var exe struct{ Command string }
		if req.Type != "exec" || ssh.Unmarshal(req.Payload, &exe) != nil {
			_ = req.Reply(false, nil)
			continue
		}
		name, path, _ := strings.Cut(exe.Command, " ")
		if name != "git-upload-pack" {
			_ = req.Reply(false, nil)
			continue
		}
		_ = req.Reply(true, nil)
		cmd := exec.Command("git", "upload-pack", strings.Trim(path, "'"))
		cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
		status := uint32(0)
		if err := cmd.Run(); err != nil {
			status = 1
		}
		_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
		return
	}
}

func TestMirrorSSH(t *testing.T) {
	r := newRemote(t, "stacks.git")
	clientKey, clientPEM := newSSHKey(t)
	_, otherPEM := newSSHKey(t)
	otherHostKey, _ := newSSHKey(t)
	srv := startSSHServer(t, clientKey)
	url := "ssh://git@" + srv.addr + r.bare
	host := knownhosts.Normalize(srv.addr)
	known := []byte(knownhosts.Line([]string{host}, srv.hostKey) + "\n")

	tests := []struct {
		name     string
		cred     *Credentials
		wantErr  error
		wantHint string
	}{
		{name: "key and known host", cred: &Credentials{SSHKey: clientPEM, KnownHosts: known}},
		{
			name: "known_hosts among other hosts", cred: &Credentials{SSHKey: clientPEM, KnownHosts: append(
				[]byte(knownhosts.Line([]string{"git.example.com"}, otherHostKey)+"\n"), known...)},
		},
		{
			// The client must ask for the RSA key, not take the ed25519 one the
			// server would show by default.
			name: "known_hosts lists the RSA key only", cred: &Credentials{SSHKey: clientPEM, KnownHosts: []byte(knownhosts.Line([]string{host}, srv.rsaHostKey) + "\n")},
		},
		{name: "key refused", cred: &Credentials{SSHKey: otherPEM, KnownHosts: known}, wantErr: ErrAuthFailed, wantHint: "refused the SSH key"},
		{
			name: "host unknown", cred: &Credentials{SSHKey: clientPEM, KnownHosts: []byte(knownhosts.Line([]string{"git.example.com"}, srv.hostKey) + "\n")},
			wantErr: ErrHostKey, wantHint: "add the host to --known-hosts",
		},
		{
			name: "host key changed", cred: &Credentials{SSHKey: clientPEM, KnownHosts: []byte(knownhosts.Line([]string{host}, otherHostKey) + "\n")},
			wantErr: ErrHostKey, wantHint: "differs",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := openMirror(t, t.TempDir(), url)
			sha, fetched, err := m.Fetch(t.Context(), "main", tt.cred)
			if tt.wantErr == nil {
				if err != nil || sha != r.head(t) || !fetched {
					t.Fatalf("Fetch = %s, %v, %v; want %s, true", sha, fetched, err, r.head(t))
				}
				wantStack(t, m, sha, "services:\n  web:\n    image: nginx:1\n")
				if again, fetched := fetch(t, m, "main", tt.cred); again != sha || fetched {
					t.Errorf("second Fetch = %s, %v; want %s, false", again, fetched, sha)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Fetch error = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantHint) {
				t.Errorf("error %q should say %q", err, tt.wantHint)
			}
		})
	}
}

// A handle on a mirror that another handle fetched into (a preview's, before
// Mirrors shared one) finds the tip fetched already and must still read it: `berth
// diff --source` then `source sync` failed with "the repository has no commits".
func TestMirrorReadsWhatAnotherHandleFetched(t *testing.T) {
	needGit(t)
	r := newRemote(t, "stacks.git")
	dir := filepath.Join(t.TempDir(), "mirror")
	syncs := openMirror(t, dir, r.fileURL())
	first, _ := fetch(t, syncs, "main", nil)
	// Reading makes go-git list the pack files.
	wantStack(t, syncs, first, "services:\n  web:\n    image: nginx:1\n")

	second := r.commit("services:\n  web:\n    image: nginx:2\n")
	previews := openMirror(t, dir, r.fileURL())
	if sha, fetched := fetch(t, previews, "main", nil); sha != second || !fetched {
		t.Fatalf("the other handle's Fetch = %s, %v; want %s, true", sha, fetched, second)
	}
	if sha, fetched := fetch(t, syncs, "main", nil); sha != second || fetched {
		t.Fatalf("Fetch after the other handle's = %s, %v; want %s, false", sha, fetched, second)
	}
	wantStack(t, syncs, second, "services:\n  web:\n    image: nginx:2\n")
}

// Mirrors hands one Mirror per directory to its users, closes it with the last
// release, and a new URL gets a Mirror of its own.
func TestMirrorsShareOneMirrorPerDirectory(t *testing.T) {
	needGit(t)
	r := newRemote(t, "stacks.git")
	moved := newRemote(t, "moved.git")
	dir := filepath.Join(t.TempDir(), "mirror")
	p := NewMirrors()
	a, releaseA, err := p.Open(dir, r.fileURL())
	if err != nil {
		t.Fatal(err)
	}
	b, releaseB, err := p.Open(dir, r.fileURL())
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("two users of one directory got two mirrors")
	}
	c, releaseC, err := p.Open(dir, moved.fileURL())
	if err != nil {
		t.Fatal(err)
	}
	if c == a {
		t.Fatal("a new URL got the mirror of the old one")
	}
	releaseA()
	releaseA() // a second release of one Open is a no-op
	sha, _ := fetch(t, b, "main", nil)
	wantStack(t, b, sha, "services:\n  web:\n    image: nginx:1\n")
	releaseB()
	releaseC()
	if len(p.open) != 0 {
		t.Errorf("%d mirrors open after every release", len(p.open))
	}
}

// A sync and previews read one mirror at once while the branch moves: each read
// gets the commit its fetch returned.
func TestMirrorsFetchAndReadConcurrently(t *testing.T) {
	needGit(t)
	r := newRemote(t, "stacks.git")
	dir := filepath.Join(t.TempDir(), "mirror")
	p := NewMirrors()
	read := func() error {
		m, release, err := p.Open(dir, r.fileURL())
		if err != nil {
			return err
		}
		defer release()
		sha, _, err := m.Fetch(t.Context(), "main", nil)
		if err != nil {
			return err
		}
		fsys, _, err := m.Repository().TreeFS(sha)
		if err != nil {
			return err
		}
		_, err = fs.ReadFile(fsys, stackFile)
		return err
	}
	// The syncer holds the mirror throughout, as a source's loop does.
	_, release, err := p.Open(dir, r.fileURL())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for i := range 5 {
		r.commit(fmt.Sprintf("services:\n  web:\n    image: nginx:%d\n", i+2))
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for j := range errs {
			wg.Go(func() { errs[j] = read() })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("commit %d: %v", i+2, err)
		}
	}
}
