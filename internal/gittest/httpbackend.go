package gittest

import (
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berthd/berth/internal/testenv"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// HTTPBackend serves the bare repositories under a directory over Git's smart HTTP
// protocol, through the real `git http-backend`, as a Git host would.
type HTTPBackend struct {
	// URL is the server's base URL; RepoURL appends a repository's path to it.
	URL string
	// CAPEM is the certificate a client must trust to reach a WithTLS server: its
	// own, self-signed, as a Git host with a private CA.
	CAPEM       []byte
	token       string
	tls         bool
	uploadPacks atomic.Int64
}

// HTTPOption configures NewHTTPBackend.
type HTTPOption func(*HTTPBackend)

// WithToken makes the server answer 401 to every request whose basic-auth password is
// not token, with any non-empty user name, the way Git hosts check access tokens.
func WithToken(token string) HTTPOption {
	return func(b *HTTPBackend) { b.token = token }
}

// WithTLS serves HTTPS, with a certificate no system trusts (CAPEM).
func WithTLS() HTTPOption {
	return func(b *HTTPBackend) { b.tls = true }
}

// NewHTTPBackend serves every bare repository under root (GIT_HTTP_EXPORT_ALL) until
// the test ends. Without the git binary the test is skipped, or fails under BERTH_REQUIRE_INTEGRATION=1.
func NewHTTPBackend(tb testing.TB, root string, opts ...HTTPOption) *HTTPBackend {
	tb.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		testenv.Unavailable(tb, "git is not installed: git http-backend serves the test's repositories")
	}
	b := &HTTPBackend{}
	for _, opt := range opts {
		opt(b)
	}
	backend := &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.token != "" {
			user, password, ok := r.BasicAuth()
			if !ok || user == "" || password != b.token {
				w.Header().Set("WWW-Authenticate", `Basic realm="gittest"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			b.uploadPacks.Add(1)
		}
		backend.ServeHTTP(w, r)
	}))
	if b.tls {
		// Clients that do not trust the certificate are what tests want to see.
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
		b.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	} else {
		srv.Start()
	}
	tb.Cleanup(srv.Close)
	b.URL = srv.URL
	return b
}

// RepoURL is the URL of the repository at path (slash-separated) under the root.
func (b *HTTPBackend) RepoURL(path string) string {
	return b.URL + "/" + strings.TrimPrefix(path, "/")
}

// UploadPacks counts the upload-pack POSTs served so far, that is the fetches that
// went past listing the references (ls-remote is a GET of info/refs only).
func (b *HTTPBackend) UploadPacks() int64 {
	return b.uploadPacks.Load()
}

// Publish copies every object, branch and tag of r into the bare repository at dir,
// creating it when absent, like a forced push of all branches and tags: a branch
// moves to r's commit even when that is not a fast-forward. References the bare
// repository has and r lacks stay.
func (r *Repo) Publish(dir string) {
	r.tb.Helper()
	bare, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		bare, err = git.PlainInitWithOptions(dir, &git.PlainInitOptions{Bare: true, InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}})
	}
	if err != nil {
		r.tb.Fatalf("open bare repository %s: %v", dir, err)
	}
	objects, err := r.Repo.Storer.IterEncodedObjects(plumbing.AnyObject)
	if err != nil {
		r.tb.Fatal(err)
	}
	err = objects.ForEach(func(o plumbing.EncodedObject) error {
		if bare.Storer.HasEncodedObject(o.Hash()) == nil {
			return nil
		}
		_, err := bare.Storer.SetEncodedObject(o)
		return err
	})
	if err != nil {
		r.tb.Fatalf("copy objects to %s: %v", dir, err)
	}
	refs, err := r.Repo.Storer.IterReferences()
	if err != nil {
		r.tb.Fatal(err)
	}
	err = refs.ForEach(func(ref *plumbing.Reference) error {
		if !ref.Name().IsBranch() && !ref.Name().IsTag() {
			return nil
		}
		return bare.Storer.SetReference(ref)
	})
	if err != nil {
		r.tb.Fatalf("copy references to %s: %v", dir, err)
	}
}
