package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Revision resolves rev (a commit, HEAD^...) in the git repository that holds dir.
func Revision(ctx context.Context, dir, rev string) (string, error) {
	out, err := git(ctx, dir, "rev-parse", "--verify", rev+"^{commit}")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// BuildRevision builds berth as Build does, from commit rev of the git repository
// that holds repoDir, into dir: the previous release of an upgrade test. The sources
// are extracted under dir (git archive), so the repository is left as it was.
func BuildRevision(ctx context.Context, repoDir, rev, dir string) (string, error) {
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	top, err := git(ctx, repoDir, "rev-parse", "--show-toplevel")
	if err != nil {
		return "", err
	}
	// From a subdirectory, git archives only that subdirectory.
	archive, err := git(ctx, strings.TrimSpace(string(top)), "archive", "--format=tar", rev)
	if err != nil {
		return "", err
	}
	tar := exec.CommandContext(ctx, "tar", "-x", "-C", src)
	tar.Stdin = bytes.NewReader(archive)
	if out, err := tar.CombinedOutput(); err != nil {
		return "", fmt.Errorf("extract commit %s: %w\n%s", rev, err, out)
	}
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	path, err := buildIn(ctx, src, bin)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", rev, err)
	}
	return path, nil
}

func git(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
