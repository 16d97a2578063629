package gitserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/berthd/berth/internal/testenv"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berthd/berth/applier/gitserver"
)

const (
	user          = "ci"
	token         = "s3cret-push-token"
	readOnlyToken = "read-only-token"
	gitBinary     = "/usr/bin/git"
)

// hooks is a gitserver.Hooks whose push hooks each test sets; it counts their calls.
type hooks struct {
	mu          sync.Mutex
	preReceive  func(ctx context.Context, p *gitserver.Push) error
	postReceive func(ctx context.Context, p *gitserver.Push)
	pre, post   int
}

func (h *hooks) Authorize(_ context.Context, _, u, password string, write bool) error {
	switch {
	case u == user && password == token:
		return nil
	case u == user && password == readOnlyToken && !write:
		return nil
	case u == user && password == readOnlyToken:
		return fmt.Errorf("token is read-only: %w", gitserver.ErrForbidden)
	default:
		return fmt.Errorf("bad credentials: %w", gitserver.ErrUnauthorized)
	}
}

func (h *hooks) PreReceive(ctx context.Context, p *gitserver.Push) error {
	h.mu.Lock()
	h.pre++
	f := h.preReceive
	h.mu.Unlock()
	if f == nil {
		return nil
	}
	return f(ctx, p)
}

func (h *hooks) PostReceive(ctx context.Context, p *gitserver.Push) {
	h.mu.Lock()
	h.post++
	f := h.postReceive
	h.mu.Unlock()
	if f != nil {
		f(ctx, p)
	}
}

func (h *hooks) set(pre func(context.Context, *gitserver.Push) error, post func(context.Context, *gitserver.Push)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.preReceive, h.postReceive = pre, post
}

func (h *hooks) calls() (pre, post int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pre, h.post
}

// shared is a value a hook sets, in the server's goroutine, and the test reads once git
// returned.
type shared[T any] struct {
	mu sync.Mutex
	v  T
}

func (s *shared[T]) set(v T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.v = v
}

func (s *shared[T]) get() T {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.v
}

// server serves one bare repository, "stacks", over HTTP.
type server struct {
	url   string // http://127.0.0.1:PORT
	bare  string // the directory of "stacks"
	hooks *hooks
	home  string // HOME of the git commands
	// posts gets the path of every POST as it arrives, when there is room.
	posts chan string
}

func newServer(t *testing.T, maxBytes int64) *server {
	t.Helper()
	if _, err := os.Stat(gitBinary); err != nil {
		testenv.Unavailable(t, fmt.Sprintf("these tests run the real git at %s: %v", gitBinary, err))
	}
	s := &server{bare: filepath.Join(t.TempDir(), "stacks.git"), hooks: &hooks{}, home: t.TempDir(), posts: make(chan string, 100)}
	s.git(t, "", "init", "--quiet", "--bare", "--initial-branch=main", s.bare)
	h, err := gitserver.NewHandler(gitserver.Config{
		Dir: func(repo string) (string, error) {
			if repo == "stacks" {
				return s.bare, nil
			}
			return "", fmt.Errorf("no push source %s: %w", repo, gitserver.ErrNotFound)
		},
		Hooks:           s.hooks,
		MaxRequestBytes: maxBytes,
	})
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			select {
			case s.posts <- r.URL.Path:
			default:
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	s.url = ts.URL
	return s
}

// remote is the URL of repo with the credentials in it.
func (s *server) remote(repo, password string) string {
	host := strings.TrimPrefix(s.url, "http://")
	if password == "" {
		return fmt.Sprintf("http://%s/git/%s.git", host, repo)
	}
	return fmt.Sprintf("http://%s:%s@%s/git/%s.git", user, password, host, repo)
}

// run runs git in dir, isolated from the user's and the system's configuration.
func (s *server) run(dir string, env []string, args ...string) (stdout, stderr string, err error) {
	args = append([]string{"-c", "credential.helper=", "-c", "user.name=Berth Test", "-c", "user.email=test@berth.example",
		"-c", "init.defaultBranch=main", "-c", "advice.detachedHead=false"}, args...)
	cmd := exec.Command(gitBinary, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + s.home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"LC_ALL=C",
		"GIT_AUTHOR_DATE=2026-11-24T12:00:00Z",
		"GIT_COMMITTER_DATE=2026-11-24T12:00:00Z",
	}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// git runs git and fails the test when it fails; it returns the trimmed stdout.
func (s *server) git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, errOut, err := s.run(dir, nil, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return strings.TrimSpace(out)
}

// ref returns the value of name in the served repository, "" when it does not exist.
func (s *server) ref(t *testing.T, name string) string {
	t.Helper()
	out, _, err := s.run(s.bare, nil, "rev-parse", "--verify", "--quiet", name)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return ""
	}
	if err != nil {
		t.Fatalf("rev-parse %s: %v", name, err)
	}
	return strings.TrimSpace(out)
}

// clone clones the served repository with the push token into a new directory.
func (s *server) clone(t *testing.T, args ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "work")
	s.git(t, "", append(append([]string{"clone", "--quiet"}, args...), s.remote("stacks", token), dir)...)
	return dir
}

// commit writes files into the work tree at dir, commits them and returns the SHA.
func (s *server) commit(t *testing.T, dir, msg string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.git(t, dir, "add", "--all")
	s.git(t, dir, "commit", "--quiet", "--allow-empty", "-m", msg)
	return s.git(t, dir, "rev-parse", "HEAD")
}

// push pushes from dir and returns git's stderr; it fails the test when wantOK is not
// what happened.
func (s *server) push(t *testing.T, dir string, wantOK bool, args ...string) string {
	t.Helper()
	_, stderr, err := s.run(dir, nil, append([]string{"push"}, args...)...)
	if ok := err == nil; ok != wantOK {
		t.Fatalf("git push %s: succeeded=%v, want %v\n%s", strings.Join(args, " "), ok, wantOK, stderr)
	}
	return stderr
}
