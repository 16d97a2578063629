package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berthd/berth/cluster/api"
)

// pushGoal is issue 6's bound on the median time from `git push` to every task
// running the pushed revision.
const pushGoal = 2 * time.Second

// pushServices is the pushed stack's size (issue 6: a 10-service stack).
const pushServices = 10

// pushStack writes a stack of pushServices services, one replica each, of image tag.
func pushStack(tag string) string {
	var b strings.Builder
	b.WriteString("services:\n")
	for i := range pushServices {
		fmt.Fprintf(&b, "  s%d:\n    image: %s\n    command: [\"sleep\", \"100000\"]\n    stop_signal: SIGKILL\n    stop_grace_period: 1s\n", i, tag)
	}
	return b.String()
}

// pushes measures push to deploy: `git push` of a commit that changes every
// service's image tag to a push source, until the API reports every task of the
// new revision running (the push itself returns at about that moment, having
// streamed the rollout).
func (b *bench) pushes(ctx context.Context, root string) error {
	tags := make([]string, b.cfg.pushes+2)
	for i := range tags {
		tags[i] = fmt.Sprintf("berth.test/busybox:p%d", i)
		if err := b.loadImageNamed(ctx, root, tags[i]); err != nil {
			return err
		}
	}
	if err := b.cli(ctx, "source", "add", "apps", "--push"); err != nil {
		return err
	}
	repo := filepath.Join(root, "repo")
	home := filepath.Join(root, "home")
	if err := os.MkdirAll(filepath.Join(repo, "bench"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	git := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = repo
		cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GIT_SSL_CAINFO=") }),
			"HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
			"GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@berth.invalid", "GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@berth.invalid")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := git("init", "-q", "-b", "main"); err != nil {
		return err
	}
	r := b.d.CLI(ctx, "", "source", "remote", "apps")
	if err := r.Err(); err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if err := git(strings.Fields(line)[1:]...); err != nil {
			return err
		}
	}
	fmt.Printf("push to deploy: %d pushes (after a warm-up) of a commit changing the image tag of all %d services (1 replica each), until the API reports every task of the revision running\n",
		b.cfg.pushes, pushServices)
	var took []time.Duration
	for i, tag := range tags[:b.cfg.pushes+1] {
		if err := os.WriteFile(filepath.Join(repo, "bench", "compose.yaml"), []byte(pushStack(tag)), 0o644); err != nil {
			return err
		}
		if err := git("add", "-A"); err != nil {
			return err
		}
		if err := git("commit", "-q", "-m", tag); err != nil {
			return err
		}
		// The watch runs beside the push: the push returns once it has shown the
		// rollout, which is not what is measured.
		start := time.Now()
		ran := make(chan error, 1)
		var running time.Duration
		go func() {
			err := b.waitImage(ctx, "bench", tag)
			running = time.Since(start)
			ran <- err
		}()
		if err := git("push", "-q", "berth", "main"); err != nil {
			return err
		}
		pushed := time.Since(start)
		if err := <-ran; err != nil {
			return err
		}
		name := fmt.Sprintf("push %d:", i)
		if i == 0 {
			name = "warm-up (not counted):"
		} else {
			took = append(took, running)
		}
		fmt.Printf("%s all %d tasks of %s running after %s; git push returned after %s\n", name, pushServices, tag, ms(running), ms(pushed))
	}
	verdict := "met"
	if median(took) > pushGoal {
		verdict = "not met"
	}
	fmt.Printf("push to running, p50 of %d: %s (goal <= %s: %s)\n", len(took), ms(median(took)), pushGoal, verdict)
	return b.cli(ctx, "source", "rm", "--prune", "apps")
}

// waitImage waits until every service of stack runs its tasks of image, all up to date.
func (b *bench) waitImage(ctx context.Context, stack, image string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return b.api.WatchServices(ctx, stack, func(svcs []*api.ServiceStatus) (bool, error) {
		if len(svcs) != pushServices {
			return false, nil
		}
		for _, s := range svcs {
			if s.Spec.Image != image || s.UpToDate < s.Desired || s.Running != s.Desired {
				return false, nil
			}
		}
		return true, nil
	})
}
