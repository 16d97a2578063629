package gitserver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/berthd/berth/applier/gitserver"
)

const mainRef = plumbing.ReferenceName("refs/heads/main")

func TestPushRunsHooksAroundTheReferenceUpdate(t *testing.T) {
	s := newServer(t, 0)
	work := s.clone(t)

	steps := []struct {
		name    string
		compose string
	}{
		{name: "create main", compose: "services:\n  web:\n    image: nginx:1.27\n"},
		{name: "fast-forward main", compose: "services:\n  web:\n    image: nginx:1.28\n"},
	}
	old := plumbing.ZeroHash
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			sha := plumbing.NewHash(s.commit(t, work, step.name, map[string]string{"web/compose.yaml": step.compose}))
			var sawPre, sawPost shared[bool]
			s.hooks.set(func(_ context.Context, p *gitserver.Push) error {
				sawPre.set(true)
				want := []gitserver.RefUpdate{{Name: mainRef, Old: old, New: sha}}
				if p.Repo != "stacks" || fmt.Sprint(p.Updates) != fmt.Sprint(want) {
					t.Errorf("PreReceive got repo %q updates %v, want stacks %v", p.Repo, p.Updates, want)
				}
				ref, err := p.Storage.Reference(mainRef, false)
				switch {
				case old.IsZero() && !errors.Is(err, plumbing.ErrReferenceNotFound):
					t.Errorf("inside PreReceive main is %v (err %v), want it absent", ref, err)
				case !old.IsZero() && (err != nil || ref.Hash() != old):
					t.Errorf("inside PreReceive main is %v (err %v), want the old %s", ref, err, old)
				}
				commit, err := p.Storage.CommitObject(sha)
				if err != nil {
					t.Errorf("read the pushed commit: %v", err)
					return nil
				}
				file, err := commit.File("web/compose.yaml")
				if err != nil {
					t.Errorf("read web/compose.yaml of the pushed commit: %v", err)
					return nil
				}
				if got, err := file.Contents(); err != nil || got != step.compose {
					t.Errorf("web/compose.yaml of the pushed commit = %q (err %v), want %q", got, err, step.compose)
				}
				fmt.Fprintf(p.Progress, "plan for %s: 1 service to update\n", sha)
				return nil
			}, func(_ context.Context, p *gitserver.Push) {
				sawPost.set(true)
				if ref, err := p.Storage.Reference(mainRef, false); err != nil || ref.Hash() != sha {
					t.Errorf("inside PostReceive main is %v (err %v), want the new %s", ref, err, sha)
				}
				for _, line := range []string{"converging web 0/1\n", "converged web 1/1\n"} {
					if _, err := io.WriteString(p.Progress, line); err != nil {
						t.Errorf("write progress: %v", err)
					}
				}
			})

			stderr := s.push(t, work, true, "origin", "main")

			if !sawPre.get() || !sawPost.get() {
				t.Fatalf("PreReceive ran: %v, PostReceive ran: %v; want both", sawPre.get(), sawPost.get())
			}
			for _, want := range []string{
				"remote: plan for " + sha.String() + ": 1 service to update",
				"remote: converging web 0/1",
				"remote: converged web 1/1",
				"main -> main",
			} {
				if !strings.Contains(stderr, want) {
					t.Errorf("git push stderr lacks %q:\n%s", want, stderr)
				}
			}
			if got := s.ref(t, "refs/heads/main"); got != sha.String() {
				t.Errorf("after the push main is %q, want %s", got, sha)
			}
			old = sha
		})
	}
}

func TestPushRejectedByPreReceive(t *testing.T) {
	tests := []struct {
		name    string
		initial bool // whether main exists before the rejected push
	}{
		{name: "create", initial: false},
		{name: "update", initial: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, 0)
			work := s.clone(t)
			before := ""
			if tt.initial {
				before = s.commit(t, work, "valid", map[string]string{"compose.yaml": "services: {web: {image: nginx}}\n"})
				s.push(t, work, true, "origin", "main")
			}
			s.commit(t, work, "invalid", map[string]string{"compose.yaml": "services: {api: {}}\n"})
			s.hooks.set(func(_ context.Context, p *gitserver.Push) error {
				return errors.New("stack default: service api: image is required\nstack default: service api: set image or build")
			}, nil)
			_, postBefore := s.hooks.calls()

			stderr := s.push(t, work, false, "origin", "main")

			for _, want := range []string{
				"! [remote rejected] main -> main (stack default: service api: image is required; stack default: service api: set image or build)",
				"remote: push rejected: stack default: service api: image is required",
				"remote: stack default: service api: set image or build",
			} {
				if !strings.Contains(stderr, want) {
					t.Errorf("git push stderr lacks %q:\n%s", want, stderr)
				}
			}
			if got := s.ref(t, "refs/heads/main"); got != before {
				t.Errorf("after the rejected push main is %q, want %q", got, before)
			}
			if _, post := s.hooks.calls(); post != postBefore {
				t.Errorf("PostReceive ran %d times for the rejected push", post-postBefore)
			}
		})
	}
}

func TestPushDeleteAndForce(t *testing.T) {
	s := newServer(t, 0)
	work := s.clone(t)
	first := s.commit(t, work, "first", map[string]string{"compose.yaml": "services: {web: {image: nginx}}\n"})
	s.push(t, work, true, "origin", "main", "main:dev")

	var seen shared[[]gitserver.RefUpdate]
	s.hooks.set(func(_ context.Context, p *gitserver.Push) error {
		seen.set(p.Updates)
		for _, u := range p.Updates {
			if u.New.IsZero() && u.Name == mainRef {
				return errors.New("main is the tracked branch of source stacks: remove the source instead")
			}
		}
		return nil
	}, nil)

	t.Run("delete the tracked branch", func(t *testing.T) {
		stderr := s.push(t, work, false, "origin", "--delete", "main")
		if !strings.Contains(stderr, "! [remote rejected] main (main is the tracked branch of source stacks") {
			t.Errorf("git push stderr lacks the rejection:\n%s", stderr)
		}
		want := []gitserver.RefUpdate{{Name: mainRef, Old: plumbing.NewHash(first)}}
		if got := seen.get(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("PreReceive saw %v, want %v", got, want)
		}
		if got := s.ref(t, "refs/heads/main"); got != first {
			t.Errorf("main is %q, want it kept at %s", got, first)
		}
	})
	t.Run("delete another branch", func(t *testing.T) {
		s.push(t, work, true, "origin", "--delete", "dev")
		if got := s.ref(t, "refs/heads/dev"); got != "" {
			t.Errorf("dev is %q, want it deleted", got)
		}
	})
	t.Run("force push", func(t *testing.T) {
		s.git(t, work, "commit", "--quiet", "--amend", "-m", "rewritten")
		rewritten := s.git(t, work, "rev-parse", "HEAD")
		s.push(t, work, true, "--force", "origin", "main")
		want := []gitserver.RefUpdate{{Name: mainRef, Old: plumbing.NewHash(first), New: plumbing.NewHash(rewritten)}}
		if got := seen.get(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("PreReceive saw %v, want %v", got, want)
		}
		if got := s.ref(t, "refs/heads/main"); got != rewritten {
			t.Errorf("main is %q, want %s", got, rewritten)
		}
	})
}

func TestAuthentication(t *testing.T) {
	s := newServer(t, 0)
	work := s.clone(t)
	pushed := s.commit(t, work, "first", map[string]string{"compose.yaml": "services: {web: {image: nginx}}\n"})
	s.push(t, work, true, "origin", "main")
	s.commit(t, work, "second", nil)

	tests := []struct {
		name       string
		args       func(remote, dir string) []string
		password   string
		wantOK     bool
		wantStderr string
	}{
		{name: "push with a wrong token", args: pushArgs, password: "wrong", wantStderr: "Authentication failed"},
		{name: "push without credentials", args: pushArgs, wantStderr: "could not read Username"},
		{name: "push with a read-only token", args: pushArgs, password: readOnlyToken, wantStderr: "403"},
		{name: "clone with a wrong token", args: cloneArgs, password: "wrong", wantStderr: "Authentication failed"},
		{name: "clone with a read-only token", args: cloneArgs, password: readOnlyToken, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, err := s.run(work, nil, tt.args(s.remote("stacks", tt.password), t.TempDir())...)
			if ok := err == nil; ok != tt.wantOK {
				t.Fatalf("git succeeded=%v, want %v\n%s", ok, tt.wantOK, stderr)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("git stderr lacks %q:\n%s", tt.wantStderr, stderr)
			}
			if got := s.ref(t, "refs/heads/main"); got != pushed {
				t.Errorf("main is %q, want it kept at %s", got, pushed)
			}
		})
	}
}

func pushArgs(remote, _ string) []string { return []string{"push", remote, "main"} }

func cloneArgs(remote, dir string) []string {
	return []string{"clone", "--quiet", remote, filepath.Join(dir, "clone")}
}

func TestCloneAndFetch(t *testing.T) {
	s := newServer(t, 0)
	pusher := s.clone(t)
	first := s.commit(t, pusher, "first", map[string]string{"web/compose.yaml": "services: {web: {image: nginx}}\n"})
	s.git(t, pusher, "tag", "--annotate", "--message", "first release", "v1")
	s.push(t, pusher, true, "origin", "main", "v1")

	// Git 2.39 asks for protocol v2 and must fall back to the v0 the server answers.
	reader := s.clone(t, "--config", "protocol.version=2")
	if got := s.git(t, reader, "rev-parse", "HEAD"); got != first {
		t.Fatalf("the clone is at %s, want %s", got, first)
	}
	if got := s.git(t, reader, "rev-parse", "v1^{}"); got != first {
		t.Fatalf("the clone's annotated tag v1 points to %s, want %s", got, first)
	}
	if got, err := os.ReadFile(filepath.Join(reader, "web/compose.yaml")); err != nil || !strings.Contains(string(got), "nginx") {
		t.Fatalf("the clone's web/compose.yaml = %q (err %v)", got, err)
	}

	second := s.commit(t, pusher, "second", map[string]string{"web/compose.yaml": "services: {web: {image: caddy}}\n"})
	s.push(t, pusher, true, "origin", "main")
	// Enough commits the server lacks that Git negotiates over several requests before
	// it finds the common one.
	for i := range 40 {
		s.commit(t, reader, fmt.Sprintf("local %d", i), nil)
	}

	_, stderr, err := s.run(reader, []string{"GIT_TRACE_PACKET=1"}, "fetch", "origin")
	if err != nil {
		t.Fatalf("git fetch: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "ACK "+first+" common") {
		t.Errorf("the server did not acknowledge the common commit %s:\n%s", first, stderr)
	}
	if got := s.git(t, reader, "rev-parse", "origin/main"); got != second {
		t.Errorf("after the fetch origin/main is %s, want %s", got, second)
	}
	s.git(t, reader, "fsck", "--no-dangling")
	if got := s.git(t, reader, "show", "origin/main:web/compose.yaml"); !strings.Contains(got, "caddy") {
		t.Errorf("origin/main:web/compose.yaml = %q, want the pushed caddy", got)
	}
}

func TestUnknownRepository(t *testing.T) {
	s := newServer(t, 0)
	_, stderr, err := s.run(t.TempDir(), nil, "clone", s.remote("nope", token), "nope")
	if err == nil {
		t.Fatal("clone of an unknown repository succeeded")
	}
	if !strings.Contains(stderr, "not found") {
		t.Errorf("git clone stderr lacks \"not found\":\n%s", stderr)
	}
}

func TestProgressFailsAfterTheHookReturned(t *testing.T) {
	s := newServer(t, 0)
	work := s.clone(t)
	s.commit(t, work, "first", nil)
	var shared shared[io.Writer]
	s.hooks.set(nil, func(_ context.Context, p *gitserver.Push) { shared.set(p.Progress) })
	s.push(t, work, true, "origin", "main")
	progress := shared.get()
	if progress == nil {
		t.Fatal("PostReceive did not run")
	}
	if _, err := io.WriteString(progress, "too late\n"); err == nil {
		t.Error("writing progress after PostReceive returned succeeded, want an error")
	}
}

func TestNewHandlerConfig(t *testing.T) {
	dir := func(string) (string, error) { return "", gitserver.ErrNotFound }
	tests := []struct {
		name    string
		cfg     gitserver.Config
		wantErr string
	}{
		{name: "valid", cfg: gitserver.Config{Dir: dir, Hooks: &hooks{}}},
		{name: "no Dir", cfg: gitserver.Config{Hooks: &hooks{}}, wantErr: "Config.Dir is required"},
		{name: "no Hooks", cfg: gitserver.Config{Dir: dir}, wantErr: "Config.Hooks is required"},
		{name: "negative limit", cfg: gitserver.Config{Dir: dir, Hooks: &hooks{}, MaxRequestBytes: -1}, wantErr: "Config.MaxRequestBytes is -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := gitserver.NewHandler(tt.cfg)
			if tt.wantErr == "" {
				if err != nil || h == nil {
					t.Fatalf("NewHandler = %v, %v; want a handler", h, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewHandler error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// CI checkouts are shallow: their pushes work when the served repository has the history
// behind them, and are refused, as Git refuses them, when it would be left without it.
func TestPushFromShallowClone(t *testing.T) {
	s := newServer(t, 0)
	upstream := filepath.Join(t.TempDir(), "upstream")
	s.git(t, "", "init", "--quiet", upstream)
	s.commit(t, upstream, "one", map[string]string{"compose.yaml": "services: {web: {image: nginx:1}}\n"})
	two := s.commit(t, upstream, "two", map[string]string{"compose.yaml": "services: {web: {image: nginx:2}}\n"})

	shallow := filepath.Join(t.TempDir(), "depth1")
	s.git(t, "", "clone", "--quiet", "--depth", "1", "file://"+upstream, shallow)
	stderr := s.push(t, shallow, false, s.remote("stacks", token), "HEAD:refs/heads/main")
	if !strings.Contains(stderr, "! [remote rejected] HEAD -> main (shallow update not allowed: the history behind "+two) {
		t.Errorf("git push stderr lacks the shallow rejection:\n%s", stderr)
	}
	if got := s.ref(t, "refs/heads/main"); got != "" {
		t.Errorf("main is %q, want it absent", got)
	}

	s.push(t, upstream, true, s.remote("stacks", token), "main")
	three := s.commit(t, upstream, "three", map[string]string{"compose.yaml": "services: {web: {image: nginx:3}}\n"})
	shallow = filepath.Join(t.TempDir(), "depth2")
	s.git(t, "", "clone", "--quiet", "--depth", "2", "file://"+upstream, shallow)
	s.push(t, shallow, true, s.remote("stacks", token), "HEAD:refs/heads/main")
	if got := s.ref(t, "refs/heads/main"); got != three {
		t.Errorf("main is %q, want %s", got, three)
	}
}
