package orchestrator

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

const errNotFound = "image example/api:1: not found in the registry"

// rejectOn makes the agents of nodes (every node when none is named) reject every
// task, as with an image that cannot be pulled.
func rejectOn(nodes ...string) func(*model.Task) string {
	return func(t *model.Task) string {
		if len(nodes) == 0 || slices.Contains(nodes, t.NodeID) {
			return errNotFound
		}
		return ""
	}
}

// writes is what one service wrote to raft while time ran.
type writes struct {
	plans   int         // passes whose plan for the service was not empty: one entry each at most
	reports int         // rounds in which the agents reported: one batch entry each at most
	created []time.Time // when each of the service's tasks was made
}

func (w writes) total() int { return w.plans + w.reports }

// runFor drives d of virtual time: one pass and one round of the agents every step,
// as the leader's loop and the agents would, without waiting for convergence (a
// spinning slot never converges).
func (c *cluster) runFor(svcID string, d, step time.Duration) writes {
	var w writes
	for end := c.now.Add(d); c.now.Before(end); c.advance(step) {
		p := c.pass()[svcID]
		if !p.Empty() {
			w.plans++
		}
		for range p.Create {
			w.created = append(w.created, c.now)
		}
		if c.agents() {
			w.reports++
		}
	}
	return w
}

// gaps returns the time between consecutive creations.
func gaps(created []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(created); i++ {
		out = append(out, created[i].Sub(created[i-1]))
	}
	return out
}

// A task whose image cannot be pulled is rejected by its agent at once, before its
// restart delay. Its replacement must still wait for the delay, growing each time:
// the writes of a failing service over 30 s are bounded by 30 s / 5 s, whatever the
// agents do. (The figures are in BENCHMARKS.md, "Failing tasks: raft writes per
// service".)
func TestFailingServiceRaftWritesBounded(t *testing.T) {
	c := newCluster(t)
	c.addNode("a")
	c.reject = rejectOn()
	svc := c.addService("api", replicas(1))
	const window = 30 * time.Second
	w := c.runFor(svc.ID, window, 100*time.Millisecond)
	replacements := len(w.created) - 1
	t.Logf("30 s of a service whose image cannot be pulled: %d replacements, %d plan entries, %d report entries, %d writes; gaps %v",
		replacements, w.plans, w.reports, w.total(), gaps(w.created))
	maxReplacements := int(window/DefaultRestartDelay) + 1
	if replacements > maxReplacements {
		t.Errorf("%d replacements in %v, want at most %d (one per restart delay)", replacements, window, maxReplacements)
	}
	// Each replacement is one plan entry and one rejection report; the first task
	// adds its own two.
	if maxWrites := 2 * (maxReplacements + 1); w.total() > maxWrites {
		t.Errorf("%d raft writes in %v, want at most %d", w.total(), window, maxWrites)
	}
	// After the first replacement (made at once, as Swarm does, with the delay as its
	// NotBefore), each waits twice as long as the one before.
	g := gaps(w.created)
	for i := 1; i < len(g); i++ {
		if want := min(DefaultRestartDelay<<(i-1), MaxRestartBackoff); g[i] < want {
			t.Errorf("replacement %d came %v after the one before, want at least %v (gaps %v)", i+1, g[i], want, g)
			break
		}
	}
}

// The back-off doubles up to its cap, survives a leader change (it is read from the
// rows), resets once a task ran for a while, and restarts with a new spec.
func TestRestartBackoffGrowsCapsAndResets(t *testing.T) {
	c := newCluster(t)
	c.addNode("a")
	c.reject = rejectOn()
	svc := c.addService("api", replicas(1))
	const step = time.Second
	w := c.runFor(svc.ID, time.Hour, step)
	g := gaps(w.created)
	if len(g) < 9 {
		t.Fatalf("gaps %v: want a replacement at least every 5 minutes for an hour", g)
	}
	// A rejection is seen one step after the attempt, hence the step on top.
	for i, want := range []time.Duration{5, 10, 20, 40, 80, 160, 300, 300} {
		if got := g[i+1]; got != want*time.Second+step {
			t.Errorf("gap %d = %v, want %v (gaps %v)", i+1, got, want*time.Second+step, g)
		}
	}

	// A new leader knows nothing but the rows: it keeps the cap.
	next := newCluster(t)
	next.ids, next.now, next.reject = c.ids, c.now, c.reject
	next.nodes, next.svcs = maps.Clone(c.nodes), maps.Clone(c.svcs)
	for id, task := range c.tasks {
		next.tasks[id] = task.Copy()
	}
	w = next.runFor(svc.ID, 15*time.Minute, time.Second)
	for i, gap := range gaps(w.created) {
		if gap != MaxRestartBackoff+step {
			t.Errorf("after a leader change: gap %d = %v, want %v", i, gap, MaxRestartBackoff+step)
		}
	}

	// The image arrives: the next replacement runs. Running for a while resets the
	// back-off: its crash is restarted after the policy's delay.
	next.reject = nil
	next.runFor(svc.ID, MaxRestartBackoff+2*step, step)
	live := next.live(svc.ID)
	if len(live) != 1 || live[0].Status.State != model.TaskRunning {
		t.Fatalf("live %v, want the slot running once the image can be pulled", statuses(live))
	}
	next.advance(time.Minute)
	next.fail(live[0].ID, 1)
	p := next.plan(svc.ID)
	if len(p.Create) != 1 || !p.Create[0].NotBefore.Equal(next.now.Add(DefaultRestartDelay)) {
		t.Fatalf("after a task ran a minute: creates %+v, want one starting after %v", p.Create, DefaultRestartDelay)
	}

	// It fails quickly again: the delay doubles; a new spec starts over.
	next.converge()
	next.advance(DefaultRestartDelay)
	next.converge()
	next.fail(next.live(svc.ID)[0].ID, 1)
	if p := next.plan(svc.ID); len(p.Create) != 1 || !p.Create[0].NotBefore.Equal(next.now.Add(2*DefaultRestartDelay)) {
		t.Fatalf("a quick failure: creates %+v, want one starting after %v", p.Create, 2*DefaultRestartDelay)
	}
	next.converge()
	next.advance(2 * DefaultRestartDelay)
	next.converge()
	next.updateSpec(svc.ID, func(s *spec.Service) { s.Image = "busybox:2" })
	next.settle(time.Minute)
	next.fail(next.live(svc.ID)[0].ID, 1)
	if p := next.plan(svc.ID); len(p.Create) != 1 || !p.Create[0].NotBefore.Equal(next.now.Add(DefaultRestartDelay)) {
		t.Fatalf("first failure of a new spec: creates %+v, want one starting after %v", p.Create, DefaultRestartDelay)
	}
}

// The node where a slot's task failed is avoided while another qualifies, and still
// used when none does.
func TestReplacementAvoidsTheNodeItFailedOn(t *testing.T) {
	c := newCluster(t)
	c.addNode("a")
	c.addNode("b")
	c.reject = rejectOn("a")
	svc := c.addService("api", replicas(1))
	c.runFor(svc.ID, DefaultRestartDelay+time.Second, 100*time.Millisecond)
	tasks := c.slotTasks(svc.ID, 1)
	if len(tasks) != 2 || tasks[0].NodeID != "a" || tasks[0].Status.State != model.TaskRejected {
		t.Fatalf("slot 1: %v, want a task rejected on a first", statuses(tasks))
	}
	if got := tasks[1]; got.NodeID != "b" || got.Status.State.Terminal() {
		t.Errorf("replacement %v, want it on b, the node that did not fail", statuses(tasks[1:]))
	}

	// Only a qualifies: the replacement goes there all the same.
	c = newCluster(t)
	c.addNode("a")
	c.addNode("b", func(n *model.Node) { n.Availability = model.AvailabilityDrain })
	c.reject = rejectOn("a")
	svc = c.addService("api", replicas(1))
	c.runFor(svc.ID, DefaultRestartDelay+time.Second, 100*time.Millisecond)
	tasks = c.slotTasks(svc.ID, 1)
	if len(tasks) < 2 || tasks[1].NodeID != "a" {
		t.Errorf("slot 1: %v, want the replacement on a: an avoided node is a last resort, not excluded", statuses(tasks))
	}
}

// A global service's task is replaced on its node, after the delay too.
func TestGlobalRejectedTaskWaitsForTheDelay(t *testing.T) {
	c := newCluster(t)
	c.addNode("a")
	c.reject = rejectOn()
	svc := c.addService("agent", mode(spec.ModeGlobal))
	w := c.runFor(svc.ID, 30*time.Second, 100*time.Millisecond)
	if replacements := len(w.created) - 1; replacements > 7 {
		t.Errorf("%d replacements in 30 s, want at most 7 (gaps %v)", replacements, gaps(w.created))
	}
	live := c.live(svc.ID)
	if len(live) != 1 || live[0].NodeID != "a" || live[0].Status.State != model.TaskPending || live[0].Status.Message != msgRestartDelay {
		t.Errorf("live %v, want a replacement on a waiting for its delay", statuses(live))
	}
}
