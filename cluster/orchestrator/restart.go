package orchestrator

import (
	"slices"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// DefaultRestartDelay is the restart delay when the policy does not give one, as in
// Swarm (compose's restart_policy without delay deploys with Swarm's default too).
const DefaultRestartDelay = 5 * time.Second

// The restart back-off, as Kubernetes' CrashLoopBackOff: a task that fails soon after
// it could start makes its replacement wait twice as long as it waited itself, up to
// MaxRestartBackoff; one that ran for BackoffReset (and at least as long as it waited)
// resets the delay to the policy's. Swarm waits the policy's delay every time.
const (
	MaxRestartBackoff = 5 * time.Minute
	BackoffReset      = 10 * time.Second
	// minBackoff is where the growth starts under a shorter policy delay (delay: 0
	// restarts the first failure at once, not every one).
	minBackoff = time.Second
)

// restartPolicy is a service's restart_policy with the defaults filled in.
type restartPolicy struct {
	condition   string
	delay       time.Duration
	maxAttempts uint64 // 0: no limit
	window      time.Duration
}

// policyFor fills in the defaults: restart on any exit for services, on failure for
// jobs (a job that completed is done, whatever the condition says).
func policyFor(s *spec.Service, job bool) restartPolicy {
	p := restartPolicy{condition: spec.RestartAny, delay: DefaultRestartDelay}
	if job {
		p.condition = spec.RestartOnFailure
	}
	rp := s.Deploy.RestartPolicy
	if rp == nil {
		return p
	}
	if rp.Condition != "" {
		p.condition = rp.Condition
	}
	if job && p.condition == spec.RestartAny {
		p.condition = spec.RestartOnFailure
	}
	if rp.Delay != nil {
		p.delay = time.Duration(*rp.Delay)
	}
	if rp.MaxAttempts != nil {
		p.maxAttempts = *rp.MaxAttempts
	}
	if rp.Window != nil {
		p.window = time.Duration(*rp.Window)
	}
	return p
}

// restartDecision is the supervisor's answer for one ended task.
type restartDecision struct {
	restart   bool
	restarts  model.Restarts // the replacement's record
	notBefore time.Time      // the replacement's earliest start
	// retryAt, for a refusal because of the window, is when the window will allow a
	// restart again.
	retryAt time.Time
}

// decide applies the policy to t, a task of the current spec that ended while it was
// meant to run. The count comes from t.Restarts, so the answer is the same on any
// manager at any time: no memory outside the replicated state.
//
// A refusal writes nothing: the task keeps its desired state, which is what marks the
// slot as finished (see the package documentation). With a window, max_attempts is a
// rate: once the oldest counted restart leaves the window, the slot restarts again.
// Swarm instead gives up for good, but only until its leader changes and forgets.
func (p restartPolicy) decide(t *model.Task, now time.Time) restartDecision {
	success := t.Status.State == model.TaskComplete && t.Status.ExitCode == 0
	switch p.condition {
	case spec.RestartNone:
		return restartDecision{}
	case spec.RestartOnFailure:
		if success {
			return restartDecision{}
		}
	}
	var recent []time.Time
	if p.maxAttempts > 0 && p.window > 0 {
		since := now.Add(-p.window)
		for _, at := range t.Restarts.Recent {
			if at.After(since) {
				recent = append(recent, at)
			}
		}
		if n := uint64(len(recent)); n >= p.maxAttempts {
			return restartDecision{retryAt: recent[n-p.maxAttempts].Add(p.window)}
		}
	} else if p.maxAttempts > 0 && t.Restarts.Count >= p.maxAttempts {
		return restartDecision{}
	}
	d := restartDecision{restart: true, restarts: model.Restarts{Count: t.Restarts.Count + 1}}
	if p.maxAttempts > 0 && p.window > 0 {
		d.restarts.Recent = append(recent, now)
	}
	if delay := p.backoff(t); delay > 0 {
		d.notBefore = now.Add(delay)
	}
	return d
}

// backoff is how long t's replacement waits before it starts. Everything it reads is
// in t's row, written by the leader that made it (the delay t waited is its NotBefore
// less its CreatedAt) or reported by its agent, so any leader answers the same.
func (p restartPolicy) backoff(t *model.Task) time.Duration {
	waited := waitedFor(t)
	if waited == 0 && t.Restarts.Count == 0 || !failedQuickly(t) {
		return p.delay
	}
	return max(p.delay, min(max(2*waited, minBackoff), MaxRestartBackoff))
}

// waitedFor is the restart delay t was given.
func waitedFor(t *model.Task) time.Duration {
	if t.NotBefore.IsZero() {
		return 0
	}
	return max(t.NotBefore.Sub(t.CreatedAt), 0)
}

// failedQuickly reports whether t ended without having run for BackoffReset and for
// as long as it waited: a rejected task never ran at all. Such failures in a row make
// the back-off grow, and their nodes are avoided for the replacement.
func failedQuickly(t *model.Task) bool {
	switch t.Status.State {
	case model.TaskRejected:
		return true
	case model.TaskFailed, model.TaskComplete, model.TaskShutdown:
		waited := waitedFor(t)
		return t.Status.Timestamp.Sub(t.CreatedAt.Add(waited)) < max(BackoffReset, waited)
	}
	return false
}

// supervise decides about t, the last task of slot s, which ended while it was meant
// to run.
func (r *run) supervise(s *slot, t *model.Task) {
	switch {
	case t.Status.State == model.TaskOrphaned:
		// Its node was lost: a replacement, not a restart, so the policy and the
		// count do not apply (as for a task moved off a drained node).
		r.setDesired(t, model.TaskShutdown)
		s.refill = &refill{restarts: r.carry(t)}
	case !r.clean(t):
		// It was made from an older spec: its replacement runs the new one, which
		// starts a new count. Whatever the policy, as Swarm reuses dead slots when
		// a service is updated.
		r.setDesired(t, model.TaskShutdown)
		s.refill = &refill{}
	default:
		d := policyFor(r.spec, r.job).decide(t, r.now)
		if d.restart {
			r.setDesired(t, model.TaskShutdown)
			s.refill = &refill{restarts: d.restarts, notBefore: d.notBefore}
			return
		}
		if len(s.live) == 0 {
			s.finished = true
		}
		r.wake(d.retryAt)
	}
}

// avoidNodes adds to avoid the nodes of s's current failure streak (its tasks of the
// current spec that failed quickly, newest first, back to one that ran well), for the
// scheduler to rank last when it places s's next task.
func (r *run) avoidNodes(s *slot, avoid []string) []string {
	for i := len(s.tasks) - 1; i >= 0; i-- {
		t := s.tasks[i]
		if !r.status(t).Terminal() {
			continue
		}
		if !r.clean(t) || !failedQuickly(t) {
			break
		}
		if t.NodeID != "" && !slices.Contains(avoid, t.NodeID) {
			avoid = append(avoid, t.NodeID)
		}
	}
	return avoid
}

// msgRestartDelay is the status of a replacement waiting for its restart delay.
const msgRestartDelay = "waiting for the restart delay"

// delayed reports whether t must wait for its restart delay before it is placed, and
// asks for a run when the delay is over. A replacement is placed only then, not at
// once with its node told to wait: a node prepares a task as soon as it is assigned,
// and a task it cannot prepare (an image that cannot be pulled) would be rejected and
// replaced again at once, whatever the delay. Placing late holds a failing slot to
// one attempt per delay, and picks the node when the attempt is made.
func (r *run) delayed(t *model.Task) bool {
	if !t.NotBefore.After(r.now) {
		return false
	}
	if r.isCreated(t) {
		t.Status = model.TaskStatus{State: model.TaskPending, Message: msgRestartDelay, Timestamp: r.now}
	}
	r.wake(t.NotBefore)
	return true
}
