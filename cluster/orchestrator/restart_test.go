package orchestrator

import (
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

func TestRestartPolicyDecide(t *testing.T) {
	now := t0
	// A task that ran for an hour: no back-off.
	ended := func(st model.TaskState, code int, r model.Restarts) *model.Task {
		return &model.Task{CreatedAt: now.Add(-time.Hour), Status: model.TaskStatus{State: st, ExitCode: code, Timestamp: now}, Restarts: r}
	}
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	tests := []struct {
		name   string
		policy restartPolicy
		task   *model.Task
		want   restartDecision
	}{
		{"none never restarts", restartPolicy{condition: spec.RestartNone},
			ended(model.TaskFailed, 1, model.Restarts{}), restartDecision{}},
		{"on-failure: exit 0 is success", restartPolicy{condition: spec.RestartOnFailure},
			ended(model.TaskComplete, 0, model.Restarts{}), restartDecision{}},
		{"on-failure: failed restarts after the delay", restartPolicy{condition: spec.RestartOnFailure, delay: 10 * time.Second},
			ended(model.TaskFailed, 2, model.Restarts{}),
			restartDecision{restart: true, restarts: model.Restarts{Count: 1}, notBefore: now.Add(10 * time.Second)}},
		{"on-failure: rejected restarts, backing off even without a delay", restartPolicy{condition: spec.RestartOnFailure},
			ended(model.TaskRejected, 0, model.Restarts{Count: 4}),
			restartDecision{restart: true, restarts: model.Restarts{Count: 5}, notBefore: now.Add(minBackoff)}},
		{"on-failure: an unexpected shutdown restarts", restartPolicy{condition: spec.RestartOnFailure},
			ended(model.TaskShutdown, 0, model.Restarts{}), restartDecision{restart: true, restarts: model.Restarts{Count: 1}}},
		{"any: success restarts too", restartPolicy{condition: spec.RestartAny},
			ended(model.TaskComplete, 0, model.Restarts{}), restartDecision{restart: true, restarts: model.Restarts{Count: 1}}},
		{"max attempts left", restartPolicy{condition: spec.RestartAny, maxAttempts: 3},
			ended(model.TaskFailed, 1, model.Restarts{Count: 2}), restartDecision{restart: true, restarts: model.Restarts{Count: 3}}},
		{"max attempts reached", restartPolicy{condition: spec.RestartAny, maxAttempts: 3},
			ended(model.TaskFailed, 1, model.Restarts{Count: 3}), restartDecision{}},
		{"window full: retry when the oldest counted leaves it",
			restartPolicy{condition: spec.RestartAny, maxAttempts: 2, window: time.Minute},
			ended(model.TaskFailed, 1, model.Restarts{Count: 3, Recent: []time.Time{ago(90 * time.Second), ago(30 * time.Second), ago(10 * time.Second)}}),
			restartDecision{retryAt: now.Add(30 * time.Second)}},
		{"window with room: old entries dropped",
			restartPolicy{condition: spec.RestartAny, maxAttempts: 2, window: time.Minute},
			ended(model.TaskFailed, 1, model.Restarts{Count: 2, Recent: []time.Time{ago(90 * time.Second), ago(10 * time.Second)}}),
			restartDecision{restart: true, restarts: model.Restarts{Count: 3, Recent: []time.Time{ago(10 * time.Second), now}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy.decide(tt.task, now); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// The back-off: the policy's delay after a first failure or a task that ran for a
// while, doubled after each task that failed soon after its own delay, capped.
func TestRestartBackoff(t *testing.T) {
	now := t0
	// task waited `waited` before it could start, then ended `ran` later.
	task := func(st model.TaskState, waited, ran time.Duration, count uint64) *model.Task {
		created := now.Add(-waited - ran)
		t := &model.Task{CreatedAt: created, Status: model.TaskStatus{State: st, Timestamp: now}, Restarts: model.Restarts{Count: count}}
		if waited > 0 {
			t.NotBefore = created.Add(waited)
		}
		return t
	}
	five := restartPolicy{condition: spec.RestartAny, delay: 5 * time.Second}
	tests := []struct {
		name   string
		policy restartPolicy
		task   *model.Task
		want   time.Duration
	}{
		{"first failure: the policy's delay", five, task(model.TaskRejected, 0, 0, 0), 5 * time.Second},
		{"a quick failure after a delay doubles it", five, task(model.TaskFailed, 5*time.Second, time.Second, 1), 10 * time.Second},
		{"a rejection doubles it", five, task(model.TaskRejected, 40*time.Second, time.Minute, 4), 80 * time.Second},
		{"capped at five minutes", five, task(model.TaskRejected, 4*time.Minute, 0, 9), MaxRestartBackoff},
		{"stays at the cap", five, task(model.TaskFailed, MaxRestartBackoff, 0, 10), MaxRestartBackoff},
		{"ran for the reset time and its delay: back to the policy", five, task(model.TaskFailed, 5*time.Second, BackoffReset, 3), 5 * time.Second},
		{"ran long after a long delay: back to the policy", five, task(model.TaskComplete, 80*time.Second, 80*time.Second, 6), 5 * time.Second},
		{"ran the reset time but less than it waited: grows", five, task(model.TaskFailed, 80*time.Second, 20*time.Second, 6), 160 * time.Second},
		{"a task moved off its node fails quickly: the policy's delay", five, task(model.TaskFailed, 0, 0, 2), 5 * time.Second},
		{"delay 0: the first restart at once", restartPolicy{condition: spec.RestartAny}, task(model.TaskFailed, 0, 0, 0), 0},
		{"delay 0: then from one second", restartPolicy{condition: spec.RestartAny}, task(model.TaskFailed, 0, 0, 1), minBackoff},
		{"a policy delay above the cap is kept", restartPolicy{condition: spec.RestartAny, delay: 10 * time.Minute},
			task(model.TaskFailed, 10*time.Minute, 0, 2), 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy.backoff(tt.task); got != tt.want {
				t.Errorf("backoff = %v, want %v", got, tt.want)
			}
			d := tt.policy.decide(tt.task, now)
			if want := now.Add(tt.want); tt.want > 0 && !d.notBefore.Equal(want) {
				t.Errorf("decide: not before %v, want %v", d.notBefore, want)
			}
		})
	}
}

func TestPolicyDefaults(t *testing.T) {
	svc := service("api")
	if got := policyFor(svc, false); got != (restartPolicy{condition: spec.RestartAny, delay: DefaultRestartDelay}) {
		t.Errorf("service default = %+v", got)
	}
	if got := policyFor(svc, true); got.condition != spec.RestartOnFailure {
		t.Errorf("job default condition = %s, want on-failure", got.condition)
	}
	restartPolicyOf(spec.RestartAny, 0, 0, 0)(svc)
	if got := policyFor(svc, true); got.condition != spec.RestartOnFailure || got.delay != 0 {
		t.Errorf("job with any = %+v, want on-failure without delay", got)
	}
}

// Seed scenario: a failing task is replaced per restart_policy, and max_attempts holds
// across a leader change, because the count lives in the task rows.
func TestRestartSupervisorMaxAttemptsSurvivesLeaderChange(t *testing.T) {
	c := newCluster(t)
	c.addNode("a")
	c.addNode("b")
	svc := c.addService("api", replicas(2), restartPolicyOf(spec.RestartOnFailure, 10*time.Second, 2, 0))
	c.converge()
	first := c.live(svc.ID)[0]

	for attempt := uint64(1); attempt <= 2; attempt++ {
		cur := c.live(svc.ID)[0]
		c.advance(BackoffReset) // it ran long enough: the delay does not grow
		c.fail(cur.ID, 1)
		p := c.plan(svc.ID)
		if len(p.Create) != 1 || len(p.Update) != 1 {
			t.Fatalf("attempt %d: %d creates, %d updates; want a restart", attempt, len(p.Create), len(p.Update))
		}
		nt := p.Create[0]
		if nt.Slot != first.Slot || nt.Restarts.Count != attempt || !nt.NotBefore.Equal(c.now.Add(10*time.Second)) {
			t.Errorf("attempt %d: new task slot %d, restarts %d, not before %v", attempt, nt.Slot, nt.Restarts.Count, nt.NotBefore)
		}
		if p.Update[0].ID != cur.ID || p.Update[0].DesiredState != model.TaskShutdown {
			t.Errorf("attempt %d: update %+v, want the failed task shut down", attempt, p.Update[0])
		}
		// It is placed once its delay is over.
		c.converge()
		if got := c.tasks[nt.ID]; got.Status.State != model.TaskPending || got.NodeID != "" {
			t.Errorf("attempt %d: restarted task is %s on %q before its delay, want pending", attempt, got.Status.State, got.NodeID)
		}
		c.advance(10 * time.Second)
		c.converge()
		if got := c.tasks[nt.ID].Status.State; got != model.TaskRunning {
			t.Errorf("attempt %d: restarted task is %s after its delay, want running", attempt, got)
		}
	}

	last := c.live(svc.ID)[0]
	c.fail(last.ID, 1)
	if p := c.plan(svc.ID); !p.Empty() {
		t.Fatalf("after max attempts: plan %+v, want nothing", p)
	}
	if c.running(svc.ID) != 1 {
		t.Errorf("running = %d, want 1/2", c.running(svc.ID))
	}

	// Leader change: a new manager with nothing but the replicated rows.
	next := newCluster(t)
	next.ids = c.ids // ids are random in production; here they must not collide
	next.now = c.now.Add(time.Hour)
	next.nodes = maps.Clone(c.nodes)
	next.svcs = maps.Clone(c.svcs)
	for id, task := range c.tasks {
		next.tasks[id] = task.Copy()
	}
	if p := next.plan(svc.ID); !p.Empty() {
		t.Errorf("new leader plans %+v, want nothing: max attempts reached", p)
	}
	// A new spec starts a new count.
	next.updateSpec(svc.ID, func(s *spec.Service) { s.Image = "busybox:2" })
	next.settle(time.Hour)
	if next.running(svc.ID) != 2 {
		t.Errorf("after an update running = %d, want 2", next.running(svc.ID))
	}
}

// on-failure and a clean exit: the slot is finished, stays finished (2/3), and a new
// spec runs it again.
func TestRestartOnFailureCleanExitFinishesSlot(t *testing.T) {
	c := newCluster(t)
	c.addNode("a")
	svc := c.addService("api", replicas(3), restartPolicyOf(spec.RestartOnFailure, 0, 0, 0))
	c.converge()
	done := c.live(svc.ID)[1]
	c.fail(done.ID, 0)
	for range 3 {
		if p := c.plan(svc.ID); !p.Empty() {
			t.Fatalf("plan %+v, want nothing for a finished slot", p)
		}
	}
	if c.running(svc.ID) != 2 {
		t.Errorf("running = %d, want 2/3", c.running(svc.ID))
	}
	// The finished task is the slot's newest: even a history limit of 0 keeps it.
	c.opts.TaskHistoryLimit = 0
	if p := c.plan(svc.ID); len(p.Delete) != 0 {
		t.Errorf("reaper deleted %v, the finished slot's record", p.Delete)
	}
	c.updateSpec(svc.ID, func(s *spec.Service) { s.Image = "busybox:2" })
	c.settle(time.Hour)
	if c.running(svc.ID) != 3 {
		t.Errorf("after an update running = %d, want 3", c.running(svc.ID))
	}
}

// With a window, max_attempts is a rate: a refused slot restarts once the oldest counted
// restart has left the window, and the plan says when.
func TestRestartWindowIsARate(t *testing.T) {
	c := newCluster(t)
	c.addNode("a")
	svc := c.addService("api", replicas(1), restartPolicyOf(spec.RestartAny, 0, 1, time.Minute))
	c.converge()
	c.fail(c.live(svc.ID)[0].ID, 1)
	restartedAt := c.now
	p := c.plan(svc.ID)
	if len(p.Create) != 1 || !reflect.DeepEqual(p.Create[0].Restarts, model.Restarts{Count: 1, Recent: []time.Time{restartedAt}}) {
		t.Fatalf("first failure: creates %+v", p.Create)
	}
	c.converge()
	c.advance(20 * time.Second)
	c.fail(c.live(svc.ID)[0].ID, 1)
	p = c.plan(svc.ID)
	if !p.Empty() || !p.NextCheck.Equal(restartedAt.Add(time.Minute)) {
		t.Fatalf("second failure within the window: plan %+v, want nothing until %v", p, restartedAt.Add(time.Minute))
	}
	c.now = p.NextCheck
	p = c.plan(svc.ID)
	if len(p.Create) != 1 || p.Create[0].Restarts.Count != 2 {
		t.Errorf("after the window: creates %+v, want a second restart", p.Create)
	}
}

func TestReplicatedJob(t *testing.T) {
	c := newCluster(t)
	c.addNode("a")
	svc := c.addService("migrate", mode(spec.ModeReplicatedJob), replicas(2))
	c.converge()
	live := c.live(svc.ID)
	c.fail(live[0].ID, 0)
	c.fail(live[1].ID, 3)
	p := c.plan(svc.ID)
	if len(p.Create) != 1 || p.Create[0].Slot != live[1].Slot || p.Create[0].DesiredState != model.TaskComplete {
		t.Fatalf("creates %v, want the failed slot %d run again", statuses(p.Create), live[1].Slot)
	}
	c.advance(DefaultRestartDelay)
	c.converge()
	c.fail(c.live(svc.ID)[0].ID, 0)
	c.converge()
	if n := len(c.live(svc.ID)); n != 0 {
		t.Errorf("live = %d after every slot completed, want 0", n)
	}
	if n := len(c.tasks); n != 3 {
		t.Errorf("tasks = %d, want 3 (two completions and one failure)", n)
	}
	// A new spec runs the job again on every slot.
	c.updateSpec(svc.ID, func(s *spec.Service) { s.Image = "busybox:2" })
	p = c.plan(svc.ID)
	if len(p.Create) != 2 || p.Service != nil {
		t.Errorf("new spec: %d creates, service %+v; want the job run again on both slots, no update status", len(p.Create), p.Service)
	}
}
