package dirwatch

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
)

func TestIgnored(t *testing.T) {
	const root = "/srv/.stacks" // a hidden root itself must not hide everything
	tests := []struct {
		path string
		want bool
	}{
		{"/srv/.stacks", false},
		{"/srv/.stacks/compose.yaml", false},
		{"/srv/.stacks/web/compose.yaml", false},
		{"/srv/.stacks/web/.env", true},
		{"/srv/.stacks/.git/index", true},
		{"/srv/.stacks/web/.cache/x/compose.yaml", true},
		{"/srv/.stacks/.compose.yaml.swp", true},
		{"/srv/.stacks/compose.yaml.swx", true},
		{"/srv/.stacks/compose.yaml~", true},
		{"/srv/.stacks/backup~/compose.yaml", true},
		{"/srv/.stacks/4913", true},
		{"/srv/.stacks/web/4913", true},
		{"/srv/.stacks/49130", false},
		{"/srv/.stacks/.#compose.yaml", true},
		{"/srv/.stacks/#compose.yaml#", true},
		{"/srv/.stacks/#", false},
		{"/srv/.stacks/#notes.yaml", false},
		{"/srv/.stacks/swp", false},
		{"/srv/.stacks/a~b.yaml", false},
	}
	w := &watcher{root: root}
	for _, tt := range tests {
		if got := w.ignored(tt.path); got != tt.want {
			t.Errorf("ignored(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestLimitError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"out of watches", syscall.ENOSPC, "raise fs.inotify.max_user_watches"},
		{"out of instances", fmt.Errorf("couldn't initialize inotify: %w", syscall.EMFILE), "raise fs.inotify.max_user_instances"},
		{"other", syscall.EACCES, "permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := limitError("/srv/stacks/web", tt.err)
			if !errors.Is(err, tt.err) {
				t.Errorf("limitError(%v) = %v, want it to wrap the cause", tt.err, err)
			}
			if msg := err.Error(); !strings.Contains(msg, "/srv/stacks/web") || !strings.Contains(msg, tt.want) {
				t.Errorf("limitError(%v) = %q, want it to name the path and say %q", tt.err, msg, tt.want)
			}
		})
	}
}
