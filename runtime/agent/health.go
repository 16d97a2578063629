package agent

import (
	"context"
	"strings"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// Docker's defaults for a health check that does not set them.
const (
	defaultHealthInterval = 30 * time.Second
	defaultHealthTimeout  = 30 * time.Second
	defaultHealthRetries  = 3
)

// healthState runs a task's health check: the command in the container every
// interval; the task is running once it passes, and failed once it fails retries
// times in a row (failures during start_period, before the first pass, do not
// count).
type healthState struct {
	argv        []string
	interval    time.Duration
	timeout     time.Duration
	retries     int
	startPeriod time.Duration
	startedAt   time.Time

	timer    *time.Timer
	healthy  bool
	failures int
}

// healthArgv turns a Compose healthcheck test into the command to exec, nil when
// there is no check.
func healthArgv(h *spec.Healthcheck) []string {
	if h == nil || h.Disable || len(h.Test) == 0 {
		return nil
	}
	switch h.Test[0] {
	case "NONE":
		return nil
	case "CMD":
		return h.Test[1:]
	case "CMD-SHELL":
		return []string{"/bin/sh", "-c", strings.Join(h.Test[1:], " ")}
	}
	// A bare string is a shell command, as in Compose.
	return []string{"/bin/sh", "-c", strings.Join(h.Test, " ")}
}

func dur(d *spec.Duration, def time.Duration) time.Duration {
	if d == nil || *d <= 0 {
		return def
	}
	return time.Duration(*d)
}

func (r *runner) startHealth() {
	if r.rt == nil || r.health != nil {
		return
	}
	h := r.rt.Spec.Healthcheck
	argv := healthArgv(h)
	if len(argv) == 0 {
		return
	}
	hs := &healthState{
		argv:        argv,
		interval:    dur(h.Interval, defaultHealthInterval),
		timeout:     dur(h.Timeout, defaultHealthTimeout),
		retries:     defaultHealthRetries,
		startPeriod: dur(h.StartPeriod, 0),
		startedAt:   r.a.cfg.Now(),
	}
	if h.Retries != nil && *h.Retries > 0 {
		hs.retries = int(*h.Retries)
	}
	first := hs.interval
	if h.StartInterval != nil && hs.startPeriod > 0 {
		first = dur(h.StartInterval, hs.interval)
	}
	hs.timer = time.NewTimer(first)
	r.health = hs
}

func (r *runner) stopHealth() {
	if r.health != nil {
		r.health.timer.Stop()
	}
}

// checkHealth runs the check once and acts on the result.
func (r *runner) checkHealth(ctx context.Context) {
	hs := r.health
	cctx, cancel := context.WithTimeout(ctx, hs.timeout)
	code, out, err := r.a.cfg.Executor.Exec(cctx, r.id, hs.argv)
	cancel()
	if ctx.Err() != nil {
		return
	}
	passed := err == nil && code == 0
	switch {
	case passed:
		hs.failures = 0
		if !hs.healthy {
			hs.healthy = true
			r.report(model.TaskStatus{State: model.TaskRunning, Message: "started: healthy"})
		}
	case !hs.healthy && r.a.cfg.Now().Sub(hs.startedAt) < hs.startPeriod:
		// Still starting up: Docker does not count these.
	default:
		hs.failures++
		if hs.failures >= hs.retries {
			why := strings.TrimSpace(string(out))
			if err != nil {
				why = err.Error()
			}
			r.unhealthy = true
			r.report(model.TaskStatus{State: model.TaskFailed, Message: "started",
				Err: "task: container unhealthy: " + truncate(why, 200)})
			if err := r.a.cfg.Executor.Stop(ctx, r.id); err != nil && ctx.Err() == nil {
				r.a.cfg.Logger.Warn("agent: stopping an unhealthy container failed", "task", r.id, "error", err)
			}
			return
		}
	}
	hs.timer.Reset(hs.interval)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
