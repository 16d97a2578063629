// Package gitserver serves push sources as Git remotes over Git's smart HTTP protocol, so
// that `git push berth main` deploys: the pushed revision is checked by a pre-receive hook
// before the branch moves (an invalid revision is rejected with berth's reason on the
// client's `remote:` and `! [remote rejected]` lines), and a post-receive hook streams the
// cluster's progress to the client while the push is still open. `git fetch` and
// `git clone` of the same URL work too.
//
// The handler speaks protocol v0/v1, which every Git client falls back to when it asks for
// v2. Repositories are bare repositories on disk that exist for as long as their source
// does: the handler never creates one.
package gitserver

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

var (
	// ErrUnauthorized is wrapped by Hooks.Authorize when credentials are missing or wrong:
	// the client gets a 401 that makes Git ask for credentials.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden is wrapped by Hooks.Authorize when the credentials are valid but do not
	// allow the request (a read-only token pushing, say): the client gets a 403.
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound is wrapped by Config.Dir (or Hooks.Authorize) when no push source has
	// the requested name: the client gets a 404.
	ErrNotFound = errors.New("repository not found")
)

// DefaultMaxRequestBytes is the request body limit used when Config.MaxRequestBytes is 0.
const DefaultMaxRequestBytes = 512 << 20

// RefUpdate is one reference a push moves.
type RefUpdate struct {
	Name plumbing.ReferenceName
	// Old is the value the client saw (zero when it creates the reference); the handler
	// has checked that the reference is still there.
	Old plumbing.Hash
	// New is the pushed value, zero when the push deletes the reference.
	New plumbing.Hash
}

// Push is a push being received.
type Push struct {
	// Repo is the repository name: NAME in /git/NAME.git.
	Repo string
	// Storage holds the pushed objects. During PreReceive the references have not moved
	// yet; during PostReceive they have.
	Storage *git.Repository
	// Updates are the reference updates of the push. PreReceive gets every update that
	// passed the handler's own checks; PostReceive gets those that were applied.
	Updates []RefUpdate
	// Progress shows every write as `remote: ...` lines on the client, flushed per write.
	// It is safe for concurrent use, and fails once the hook has returned. Clients that
	// did not ask for progress never see it.
	Progress io.Writer
}

// Hooks is what the handler needs from berth.
type Hooks interface {
	// Authorize checks the HTTP basic auth credentials (user and password or token, both
	// empty when the client sent none) for a read (fetch, clone) or a write (push) of
	// repo. An error wrapping ErrUnauthorized gives a 401 so that Git asks for
	// credentials; ErrForbidden a 403; ErrNotFound a 404; any other error a 500.
	Authorize(ctx context.Context, repo, user, password string, write bool) error
	// PreReceive runs once the pushed objects are stored and before any reference moves.
	// An error rejects every update of the push: its message is the reason shown to the
	// client, in full on `remote:` lines and on one line in `! [remote rejected]`.
	// Pushes to one repository run PreReceive and the reference updates one at a time.
	PreReceive(ctx context.Context, p *Push) error
	// PostReceive runs after the references moved and before the response ends: the
	// client shows what it writes to p.Progress until it returns. ctx is cancelled when
	// the client goes away; the references have moved regardless.
	PostReceive(ctx context.Context, p *Push)
}

// Config configures NewHandler.
type Config struct {
	// Dir returns the directory of the bare repository that serves repo, or an error
	// wrapping ErrNotFound when no push source has that name. Required.
	Dir func(repo string) (string, error)
	// Hooks authorizes requests and checks pushes. Required.
	Hooks Hooks
	// MaxRequestBytes caps a request body, before and after gzip decompression; 0 means
	// DefaultMaxRequestBytes. A push bigger than this is refused with a 413.
	MaxRequestBytes int64
	// Logger receives the failures that clients only see as "internal error"; nil
	// discards them.
	Logger *slog.Logger
}

const (
	uploadPack  = "git-upload-pack"
	receivePack = "git-receive-pack"
	// pathPrefix is where repositories are served: /git/NAME.git/...
	pathPrefix = "/git/"
)

// repoName is what a repository name may look like in a URL; Dir decides whether it
// exists. It keeps path separators and dot segments out of Dir's hands.
var repoName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// NewHandler returns the handler serving /git/NAME.git/info/refs, /git-upload-pack and
// /git-receive-pack (NAME without .git works too). Mount it at /git/ without stripping
// the prefix.
func NewHandler(cfg Config) (http.Handler, error) {
	if cfg.Dir == nil {
		return nil, errors.New("gitserver: Config.Dir is required: pass the function mapping a push source name to its bare repository")
	}
	if cfg.Hooks == nil {
		return nil, errors.New("gitserver: Config.Hooks is required: pass the hooks that authorize requests and check pushes")
	}
	if cfg.MaxRequestBytes < 0 {
		return nil, fmt.Errorf("gitserver: Config.MaxRequestBytes is %d: use a positive limit, or 0 for the default of %d", cfg.MaxRequestBytes, DefaultMaxRequestBytes)
	}
	if cfg.MaxRequestBytes == 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &handler{cfg: cfg, locks: newRepoLocks()}, nil
}

type handler struct {
	cfg   Config
	locks *repoLocks
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, route, ok := splitPath(r.URL.Path)
	if !ok {
		httpError(w, http.StatusNotFound, "not found: berth serves Git repositories at /git/NAME.git")
		return
	}
	var service string
	switch route {
	case "info/refs":
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			httpError(w, http.StatusMethodNotAllowed, "method %s not allowed on %s: use GET", r.Method, r.URL.Path)
			return
		}
		service = r.URL.Query().Get("service")
		if service == "" {
			httpError(w, http.StatusBadRequest, "berth speaks only Git's smart HTTP protocol: the service parameter is missing (use git 1.6.6 or later)")
			return
		}
		if service != uploadPack && service != receivePack {
			httpError(w, http.StatusBadRequest, "unknown service %q: use %s or %s", service, uploadPack, receivePack)
			return
		}
	case uploadPack, receivePack:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			httpError(w, http.StatusMethodNotAllowed, "method %s not allowed on %s: use POST", r.Method, r.URL.Path)
			return
		}
		service = route
		if ct, want := r.Header.Get("Content-Type"), "application/x-"+service+"-request"; ct != want {
			httpError(w, http.StatusUnsupportedMediaType, "Content-Type %q not supported: send %s", ct, want)
			return
		}
	default:
		httpError(w, http.StatusNotFound, "not found: %s is not a Git smart HTTP endpoint", r.URL.Path)
		return
	}

	repo, ok := h.open(w, r, name, service == receivePack)
	if !ok {
		return
	}
	w.Header().Set("Cache-Control", "no-cache, max-age=0, must-revalidate")
	if route == "info/refs" {
		h.advertise(w, name, repo, service)
		return
	}
	body, ok := h.requestBody(w, r)
	if !ok {
		return
	}
	if service == uploadPack {
		h.uploadPack(w, r, name, repo, body)
		return
	}
	h.receivePack(w, r, name, repo, body)
}

// splitPath splits /git/NAME.git/ROUTE into NAME and ROUTE.
func splitPath(path string) (name, route string, ok bool) {
	rest, ok := strings.CutPrefix(path, pathPrefix)
	if !ok {
		return "", "", false
	}
	name, route, ok = strings.Cut(rest, "/")
	if !ok {
		return "", "", false
	}
	name = strings.TrimSuffix(name, ".git")
	if !repoName.MatchString(name) {
		return "", "", false
	}
	return name, route, true
}

// open authorizes the request and opens the repository, answering the client itself
// when it cannot.
func (h *handler) open(w http.ResponseWriter, r *http.Request, name string, write bool) (*git.Repository, bool) {
	user, password, _ := r.BasicAuth()
	if err := h.cfg.Hooks.Authorize(r.Context(), name, user, password, write); err != nil {
		h.refuse(w, name, fmt.Errorf("authorize %s: %w", name, err))
		return nil, false
	}
	dir, err := h.cfg.Dir(name)
	if err != nil {
		h.refuse(w, name, fmt.Errorf("find repository %s: %w", name, err))
		return nil, false
	}
	repo, err := git.PlainOpen(dir)
	if err != nil {
		h.refuse(w, name, fmt.Errorf("open repository %s at %s: %w", name, dir, err))
		return nil, false
	}
	return repo, true
}

// refuse answers a request that cannot be served, by the sentinel err wraps.
func (h *handler) refuse(w http.ResponseWriter, name string, err error) {
	switch {
	case errors.Is(err, ErrUnauthorized):
		w.Header().Set("WWW-Authenticate", `Basic realm="berth"`)
		httpError(w, http.StatusUnauthorized, "%v: use a berth push token as the password", err)
	case errors.Is(err, ErrForbidden):
		httpError(w, http.StatusForbidden, "%v", err)
	case errors.Is(err, ErrNotFound):
		httpError(w, http.StatusNotFound, "repository %s not found: push sources are added with `berth source add NAME --push`", name)
	default:
		h.cfg.Logger.Error("git request failed", "repo", name, "err", err)
		httpError(w, http.StatusInternalServerError, "internal error serving repository %s", name)
	}
}

// requestBody returns the request body, decompressed and limited to MaxRequestBytes.
func (h *handler) requestBody(w http.ResponseWriter, r *http.Request) (io.Reader, bool) {
	body := http.MaxBytesReader(w, r.Body, h.cfg.MaxRequestBytes)
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
		return body, true
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			h.badBody(w, fmt.Errorf("read gzip header: %w", err))
			return nil, false
		}
		// The limit applies again after decompression, against gzip bombs.
		return http.MaxBytesReader(w, zr, h.cfg.MaxRequestBytes), true
	default:
		httpError(w, http.StatusUnsupportedMediaType, "Content-Encoding %q not supported: send gzip or no encoding", enc)
		return nil, false
	}
}

// badBody answers a request whose body could not be read or parsed.
func (h *handler) badBody(w http.ResponseWriter, err error) {
	if tooLarge, ok := errors.AsType[*http.MaxBytesError](err); ok {
		httpError(w, http.StatusRequestEntityTooLarge, "request body is larger than the server's limit of %d bytes: push fewer objects at a time", tooLarge.Limit)
		return
	}
	httpError(w, http.StatusBadRequest, "bad request: %v", err)
}

func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintf(w, format+"\n", args...)
}
