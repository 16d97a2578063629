package gitserver

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"
)

func TestRepoLocks(t *testing.T) {
	l := newRepoLocks()
	unlockA, err := l.lock(t.Context(), "a")
	if err != nil {
		t.Fatalf("lock a: %v", err)
	}
	// Another repository is not held up.
	unlockB, err := l.lock(t.Context(), "b")
	if err != nil {
		t.Fatalf("lock b while a is held: %v", err)
	}
	unlockB()

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.lock(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("lock a while held, with a cancelled context: %v, want context.Canceled", err)
	}

	got := make(chan error)
	go func() {
		unlock, err := l.lock(t.Context(), "a")
		if err == nil {
			unlock()
		}
		got <- err
	}()
	unlockA()
	if err := <-got; err != nil {
		t.Fatalf("lock a after it was released: %v", err)
	}
	if n := len(l.locks); n != 0 {
		t.Errorf("%d lock entries left after every push ended, want 0", n)
	}
}

func TestOneLine(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "one line", in: "image is required", want: "image is required"},
		{name: "lines joined", in: "stack a: bad\n\n  stack b: worse\n", want: "stack a: bad; stack b: worse"},
		{name: "long", in: strings.Repeat("x", maxReasonBytes+10), want: strings.Repeat("x", maxReasonBytes) + "..."},
		{name: "cut inside a rune", in: strings.Repeat("x", maxReasonBytes-1) + "é", want: strings.Repeat("x", maxReasonBytes-1) + "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := oneLine(tt.in); got != tt.want {
				t.Errorf("oneLine(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestApplyUpdateFindsItDone: a reference already moved to the pushed value (by a
// reader of what PreReceive made public) is an applied update; one moved elsewhere
// is not.
func TestApplyUpdateFindsItDone(t *testing.T) {
	repo, err := git.Init(memory.NewStorage(), nil)
	if err != nil {
		t.Fatal(err)
	}
	main := plumbing.NewBranchReferenceName("main")
	a, b, c := plumbing.NewHash("aa"), plumbing.NewHash("bb"), plumbing.NewHash("cc")
	set := func(h plumbing.Hash) {
		if err := repo.Storer.SetReference(plumbing.NewHashReference(main, h)); err != nil {
			t.Fatal(err)
		}
	}
	set(b)
	if err := applyUpdate(repo, RefUpdate{Name: main, Old: a, New: b}); err != nil {
		t.Errorf("a -> b with main at b already: %v", err)
	}
	set(c)
	if err := applyUpdate(repo, RefUpdate{Name: main, Old: a, New: b}); err == nil {
		t.Error("a -> b with main moved to c: no error")
	}
}
