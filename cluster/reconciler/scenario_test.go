package reconciler_test

// Scenario tests: three managers in process (real raft on its in-memory transport, real
// logs and FSM, control and reconciler on each), simulated nodes whose agents watch and
// report through the agent API of a manager. Every wait is bounded; nothing asserts a
// duration.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/bench/simagent"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/cluster/reconciler"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/internal/memcluster"
	"github.com/berthd/berth/internal/syncbuf"
	"github.com/berthd/berth/spec"
)

type scenario struct {
	t   *testing.T
	ctx context.Context
	c   *memcluster.Cluster

	mu     sync.Mutex
	agents map[string]*simagent.Agent
	stops  map[string]context.CancelFunc
	// start decides what tasks do when agents start them; prepare, when set, whether
	// agents can prepare them (an error rejects the task at once).
	start   func(*model.Task) simagent.Outcome
	prepare func(*model.Task) error
	n       int
}

func newScenario(t *testing.T, tune func(*orchestrator.Options)) *scenario {
	t.Helper()
	logs := &syncbuf.Buffer{}
	c, err := memcluster.New(memcluster.Options{
		Dir:        t.TempDir(),
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Reconciler: reconciler.Config{Tune: tune},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	s := &scenario{t: t, ctx: ctx, c: c, agents: map[string]*simagent.Agent{}, stops: map[string]context.CancelFunc{}}
	t.Cleanup(func() {
		s.mu.Lock()
		for _, stop := range s.stops {
			stop()
		}
		s.mu.Unlock()
		cancel()
		c.Close()
		if t.Failed() && os.Getenv("BERTH_TEST_LOGS") != "" {
			t.Logf("--- cluster log\n%s", logs.String())
		}
	})
	return s
}

// addNode registers a ready node and starts its agent, talking to the managers in
// turn (a follower forwards its reports to the leader).
func (s *scenario) addNode(id string, labels map[string]string) {
	s.t.Helper()
	if _, err := s.c.Apply(s.ctx, command.CmdNodeUpsert, memcluster.Node(id, labels)); err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := s.c.Managers()
	m := ms[s.n%len(ms)]
	s.n++
	a := simagent.New(simagent.Config{API: m.AgentAPI(id), NodeID: id, Wait: 2 * time.Second,
		Start: func(t *model.Task) simagent.Outcome {
			if s.start != nil {
				return s.start(t)
			}
			return simagent.Outcome{}
		},
		Prepare: func(t *model.Task) error {
			if s.prepare != nil {
				return s.prepare(t)
			}
			return nil
		}})
	ctx, cancel := context.WithCancel(s.ctx)
	s.agents[id], s.stops[id] = a, cancel
	go func() { _ = a.Run(ctx) }()
}

// addNodes adds ready nodes node-1 to node-n, without labels.
func (s *scenario) addNodes(n int) {
	s.t.Helper()
	for i := 1; i <= n; i++ {
		s.addNode(fmt.Sprintf("node-%d", i), nil)
	}
}

func (s *scenario) updateNode(u command.NodeUpdate) {
	s.t.Helper()
	if _, err := s.c.Apply(s.ctx, command.CmdNodeUpdate, u); err != nil {
		s.t.Fatal(err)
	}
}

// manager returns some manager: reads work on any.
func (s *scenario) manager() *memcluster.Manager {
	m, err := s.c.Follower(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	return m
}

// load reads a stack from Compose YAML, as `berth stack deploy -c` does.
func load(t *testing.T, stack, yaml string) *spec.Stack {
	t.Helper()
	st, _, err := spec.Load(context.Background(), spec.LoadOptions{Stack: stack,
		Files: []spec.File{{Name: "compose.yaml", Content: []byte(yaml)}}})
	if err != nil {
		t.Fatalf("load %s: %v", stack, err)
	}
	return st
}

func (s *scenario) deploy(st *spec.Stack) *api.StackDeployResponse {
	s.t.Helper()
	resp, err := s.manager().Control.DeployStack(s.ctx, &api.StackDeployRequest{Stack: st})
	if err != nil {
		s.t.Fatalf("deploy %s: %v", st.Name, err)
	}
	return resp
}

func (s *scenario) service(name string) *api.ServiceStatus {
	s.t.Helper()
	svc, _, err := s.manager().Control.Service(s.ctx, name, api.Query{})
	if err != nil {
		s.t.Fatalf("service %s: %v", name, err)
	}
	return svc
}

func (s *scenario) tasks(service string) []*api.TaskInfo {
	s.t.Helper()
	ts, _, err := s.manager().Control.Tasks(s.ctx, api.TaskFilter{Service: service}, api.Query{})
	if err != nil {
		s.t.Fatalf("tasks of %s: %v", service, err)
	}
	return ts
}

// live returns the service's tasks meant to run that have not stopped.
func (s *scenario) live(service string) []*api.TaskInfo {
	var out []*api.TaskInfo
	for _, t := range s.tasks(service) {
		if (t.DesiredState == model.TaskRunning || t.DesiredState == model.TaskComplete) && !t.Status.State.Terminal() {
			out = append(out, t)
		}
	}
	return out
}

// eventually retries fn until it returns nil or d passes.
func (s *scenario) eventually(d time.Duration, what string, fn func() error) {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: not within %s: %v", what, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// converged waits until the service runs running tasks out of desired, with pending
// tasks waiting for a node.
func (s *scenario) converged(service string, running, desired uint64, pending int) *api.ServiceStatus {
	s.t.Helper()
	var st *api.ServiceStatus
	s.eventually(20*time.Second, service+" converges", func() error {
		st = s.service(service)
		n := 0
		for _, p := range st.Pending {
			n += p.Tasks
		}
		if st.Running != running || st.Desired != desired || n != pending {
			return fmt.Errorf("%d/%d running, %d pending (%v)", st.Running, st.Desired, n, st.Pending)
		}
		return nil
	})
	return st
}

func nodesOf(ts []*api.TaskInfo) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.NodeID)
	}
	slices.Sort(out)
	return out
}

func TestScenarioGlobalServiceFollowsNodes(t *testing.T) {
	s := newScenario(t, nil)
	s.addNodes(3)
	s.deploy(load(t, "mon", `
services:
  agent:
    image: busybox:1.36
    deploy:
      mode: global
`))
	s.converged("mon_agent", 3, 3, 0)

	s.addNode("node-4", nil)
	s.converged("mon_agent", 4, 4, 0)
	if got := nodesOf(s.live("mon_agent")); !slices.Equal(got, []string{"node-1", "node-2", "node-3", "node-4"}) {
		t.Fatalf("global tasks on %v", got)
	}

	s.updateNode(command.NodeUpdate{ID: "node-2", Availability: model.AvailabilityDrain})
	s.converged("mon_agent", 3, 3, 0)
	if got := nodesOf(s.live("mon_agent")); !slices.Equal(got, []string{"node-1", "node-3", "node-4"}) {
		t.Fatalf("after drain, global tasks on %v", got)
	}
	// The drained node's task was told to stop, and its agent stopped it.
	s.eventually(10*time.Second, "drained task stops", func() error {
		for _, task := range s.tasks("mon_agent") {
			if task.NodeID == "node-2" && task.Status.State != model.TaskShutdown {
				return fmt.Errorf("task %s on node-2 is %s", task.ID, task.Status.State)
			}
		}
		return nil
	})
}

func TestScenarioConstraintPendingUntilLabelled(t *testing.T) {
	s := newScenario(t, nil)
	s.addNodes(3)
	s.deploy(load(t, "db", `
services:
  postgres:
    image: postgres:16
    deploy:
      replicas: 1
      placement:
        constraints: [node.labels.os == linux]
`))
	st := s.converged("db_postgres", 0, 1, 1)
	want := "no suitable node (constraint node.labels.os == linux not satisfied on 3 nodes)"
	if st.Pending[0].Reason != want {
		t.Fatalf("pending reason %q, want %q", st.Pending[0].Reason, want)
	}
	ts := s.live("db_postgres")
	if len(ts) != 1 || ts[0].Status.State != model.TaskPending || ts[0].Status.Err != want {
		t.Fatalf("pending task: %+v", ts)
	}

	s.updateNode(command.NodeUpdate{ID: "node-2", LabelsAdd: map[string]string{"os": "linux"}})
	s.converged("db_postgres", 1, 1, 0)
	if got := nodesOf(s.live("db_postgres")); !slices.Equal(got, []string{"node-2"}) {
		t.Fatalf("placed on %v, want node-2", got)
	}
}

func TestScenarioMaxReplicasPerNode(t *testing.T) {
	s := newScenario(t, nil)
	s.addNodes(3)
	s.deploy(load(t, "web", `
services:
  nginx:
    image: nginx:1.27-alpine
    deploy:
      replicas: 5
      placement:
        max_replicas_per_node: 1
`))
	st := s.converged("web_nginx", 3, 5, 2)
	want := "no suitable node (max replicas per node limit reached on 3 nodes)"
	if len(st.Pending) != 1 || st.Pending[0].Reason != want {
		t.Fatalf("pending %+v, want 2 tasks: %q", st.Pending, want)
	}
	if got := nodesOf(s.live("web_nginx")); !slices.Equal(got, []string{"", "", "node-1", "node-2", "node-3"}) {
		t.Fatalf("tasks on %v", got)
	}

	s.addNode("node-4", nil)
	s.addNode("node-5", nil)
	s.converged("web_nginx", 5, 5, 0)
	if got := nodesOf(s.live("web_nginx")); !slices.Equal(got, []string{"node-1", "node-2", "node-3", "node-4", "node-5"}) {
		t.Fatalf("tasks on %v", got)
	}
}

// A failing task is restarted per restart_policy, and max_attempts holds across a
// change of leader: the count lives in the replicated task rows.
func TestScenarioRestartPolicyAcrossLeaderChange(t *testing.T) {
	s := newScenario(t, nil)
	s.start = func(task *model.Task) simagent.Outcome {
		if strings.HasPrefix(task.ServiceName, "app_crash") {
			return simagent.Outcome{Exit: true, ExitCode: 3}
		}
		return simagent.Outcome{}
	}
	s.addNodes(2)
	s.deploy(load(t, "app", `
services:
  crash:
    image: busybox:1.36
    deploy:
      replicas: 1
      restart_policy:
        condition: on-failure
        delay: 1s
        max_attempts: 2
`))
	// The first task failed and its replacement waits for the restart delay.
	s.eventually(20*time.Second, "first restart", func() error {
		ts := s.tasks("app_crash")
		if len(ts) < 2 {
			return fmt.Errorf("%d tasks", len(ts))
		}
		return nil
	})
	old, _ := s.c.Leader(s.ctx)
	leader, err := s.c.TransferLeadership(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leadership moved from %s to %s", old.ID, leader.ID)

	// Three tasks in all: the first and two restarts, all failed, none live.
	s.eventually(30*time.Second, "restarts run out", func() error {
		ts := s.tasks("app_crash")
		failed := 0
		for _, task := range ts {
			if task.Status.State == model.TaskFailed {
				failed++
			}
		}
		if len(ts) != 3 || failed != 3 {
			return fmt.Errorf("%d tasks, %d failed", len(ts), failed)
		}
		return nil
	})
	// A barrier: a change of nodes makes the new leader reconcile every service; once
	// the probe it places runs, that pass has decided about app_crash too.
	s.addNode("node-3", nil)
	s.deploy(load(t, "probe", `
services:
  probe:
    image: busybox:1.36
    deploy:
      mode: global
`))
	s.converged("probe_probe", 3, 3, 0)
	ts := s.tasks("app_crash")
	if len(ts) != 3 {
		t.Fatalf("after the restarts ran out: %d tasks, want 3 (max_attempts 2)", len(ts))
	}
	if ts[0].Restarts.Count != 2 {
		t.Errorf("newest task's restart count %d, want 2", ts[0].Restarts.Count)
	}
	if st := s.service("app_crash"); st.Running != 0 || st.Desired != 1 {
		t.Errorf("service %d/%d", st.Running, st.Desired)
	}
}

// An image that cannot be pulled: every agent rejects the task as soon as it has it,
// before its restart delay. The replacements still come once per delay at most, so
// the raft entries that write the service's tasks over a window are bounded by the
// window over the delay, and the service says why it does not run. A count, not a
// timing: a slower machine only writes less.
func TestScenarioUnpullableImageDoesNotSpin(t *testing.T) {
	s := newScenario(t, nil)
	const notFound = "image example/api:1: not found in the registry"
	s.prepare = func(task *model.Task) error {
		if task.ServiceName == "app_api" {
			return errors.New(notFound)
		}
		return nil
	}
	s.addNodes(2)
	feed := s.c.Managers()[0].Store.State().Feed(1 << 20)
	defer feed.Close()
	const delay, window = 200 * time.Millisecond, 3 * time.Second
	s.deploy(load(t, "app", `
services:
  api:
    image: example/api:1
    deploy:
      restart_policy:
        delay: 200ms
`))
	time.Sleep(window)

	entries, created := 0, map[string]bool{}
	events, lost := feed.Take()
	if lost {
		t.Fatal("the feed lost changes")
	}
	for _, ev := range events {
		wrote := false
		for _, ch := range ev.Changes {
			if task, ok := ch.After.(*model.Task); ok && task.ServiceName == "app_api" {
				wrote = true
				if ch.Before == nil {
					created[task.ID] = true
				}
			}
		}
		if wrote {
			entries++
		}
	}
	attempts := len(created)
	t.Logf("%v with a %v restart delay: %d tasks made, %d raft entries wrote the service's tasks", window, delay, attempts, entries)
	perWindow := int(window / delay)
	if attempts > perWindow+1 {
		t.Errorf("%d tasks made in %v, want at most %d: one per restart delay", attempts, window, perWindow+1)
	}
	// Each attempt: its creation, its placement once the delay is over, its rejection.
	if entries > 3*(perWindow+1) {
		t.Errorf("%d raft entries in %v, want at most %d", entries, window, 3*(perWindow+1))
	}
	st := s.service("app_api")
	if st.Running != 0 || len(st.Failing) != 1 || st.Failing[0].Reason != notFound {
		t.Errorf("service %d/%d, failing %+v: want 0/1 failing with %q", st.Running, st.Desired, st.Failing, notFound)
	}
}

// A rolling update whose new tasks fail within the monitor period is rolled back.
func TestScenarioRollingUpdateRollsBack(t *testing.T) {
	s := newScenario(t, nil)
	s.start = func(task *model.Task) simagent.Outcome {
		if task.ServiceName == "shop_api" && task.SpecVersion == 2 {
			return simagent.Outcome{Exit: true, ExitCode: 1}
		}
		return simagent.Outcome{}
	}
	s.addNodes(3)
	const compose = `
services:
  api:
    image: %s
    deploy:
      replicas: 3
      restart_policy:
        condition: on-failure
        delay: 0s
      update_config:
        parallelism: 1
        delay: 0s
        monitor: 1s
        failure_action: rollback
        order: stop-first
      rollback_config:
        parallelism: 1
        monitor: 200ms
`
	s.deploy(load(t, "shop", fmt.Sprintf(compose, "shop/api:1")))
	s.converged("shop_api", 3, 3, 0)
	good := s.service("shop_api")

	s.deploy(load(t, "shop", fmt.Sprintf(compose, "shop/api:2")))
	s.eventually(30*time.Second, "rollback completes", func() error {
		st := s.service("shop_api")
		if st.UpdateStatus.State != model.UpdateRollbackCompleted || st.Running != 3 {
			return fmt.Errorf("update status %q (%s), %d/%d running", st.UpdateStatus.State, st.UpdateStatus.Message, st.Running, st.Desired)
		}
		return nil
	})
	st := s.service("shop_api")
	if st.Spec.Image != "shop/api:1" || st.PreviousSpec.Image != "shop/api:2" {
		t.Fatalf("after rollback: image %s, previous %s", st.Spec.Image, st.PreviousSpec.Image)
	}
	if !strings.Contains(st.UpdateStatus.Message, "rollback completed") {
		t.Errorf("update message %q", st.UpdateStatus.Message)
	}
	hash := orchestrator.TaskHash(good.Service)
	for _, task := range s.live("shop_api") {
		if task.SpecHash != hash || task.Image != "shop/api:1" {
			t.Errorf("live task %s of hash %s image %s, want the first spec's", task.Name, task.SpecHash, task.Image)
		}
	}
}

// Scale, force update, manual rollback and stack removal, through the control plane.
func TestScenarioServiceCommands(t *testing.T) {
	s := newScenario(t, nil)
	s.addNodes(2)
	const compose = `
services:
  api:
    image: %s
    deploy:
      replicas: 2
      update_config:
        parallelism: 2
        monitor: 100ms
      rollback_config:
        parallelism: 2
        monitor: 100ms
`
	s.deploy(load(t, "shop", fmt.Sprintf(compose, "shop/api:1")))
	s.converged("shop_api", 2, 2, 0)
	m := s.manager()
	if _, err := m.Control.ScaleService(s.ctx, "shop_api", 4); err != nil {
		t.Fatal(err)
	}
	s.converged("shop_api", 4, 4, 0)
	if _, err := m.Control.ScaleService(s.ctx, "shop_api", 1); err != nil {
		t.Fatal(err)
	}
	s.converged("shop_api", 1, 1, 0)
	before := s.live("shop_api")[0].ID
	if _, err := m.Control.UpdateService(s.ctx, "shop_api", &api.ServiceUpdateRequest{Force: true}); err != nil {
		t.Fatal(err)
	}
	s.eventually(20*time.Second, "force update replaces the task", func() error {
		ts := s.live("shop_api")
		if len(ts) != 1 || ts[0].ID == before || ts[0].Status.State != model.TaskRunning {
			return fmt.Errorf("live %v", ts)
		}
		return nil
	})
	s.deploy(load(t, "shop", fmt.Sprintf(compose, "shop/api:2")))
	s.eventually(20*time.Second, "update completes", func() error {
		st := s.service("shop_api")
		if st.UpdateStatus.State != model.UpdateCompleted || st.Running != 2 {
			return fmt.Errorf("%s, %d running", st.UpdateStatus.State, st.Running)
		}
		return nil
	})
	if _, err := m.Control.RollbackService(s.ctx, "shop_api"); err != nil {
		t.Fatal(err)
	}
	// The previous spec is the one before the deploy: image 1, scaled to 1 replica.
	s.eventually(20*time.Second, "manual rollback completes", func() error {
		st := s.service("shop_api")
		ts := s.live("shop_api")
		if st.UpdateStatus.State != model.UpdateRollbackCompleted || st.Spec.Image != "shop/api:1" || len(ts) != 1 ||
			ts[0].Image != "shop/api:1" || st.Running != 1 {
			return fmt.Errorf("%s (%s), image %s, %d live", st.UpdateStatus.State, st.UpdateStatus.Message, st.Spec.Image, len(ts))
		}
		return nil
	})
	if _, err := m.Control.RemoveStack(s.ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	s.eventually(20*time.Second, "tasks of the removed stack go", func() error {
		tasks, err := s.manager().Store.State().ReadTxn().Tasks(nil)
		if err != nil || len(tasks) > 0 {
			return fmt.Errorf("%d tasks left (%v)", len(tasks), err)
		}
		return nil
	})
	if _, err := m.Control.RemoveStack(s.ctx, "shop"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("removing a missing stack: %v", err)
	}
}

// A node that goes down keeps its tasks for the grace period, then they are replaced
// on the other nodes.
func TestScenarioNodeDownGrace(t *testing.T) {
	s := newScenario(t, func(o *orchestrator.Options) { o.NodeDownGrace = 500 * time.Millisecond })
	s.addNodes(2)
	s.deploy(load(t, "web", `
services:
  nginx:
    image: nginx:1.27-alpine
    deploy:
      replicas: 2
      placement:
        max_replicas_per_node: 2
`))
	s.converged("web_nginx", 2, 2, 0)
	down := s.live("web_nginx")[0].NodeID
	s.mu.Lock()
	s.stops[down]()
	s.mu.Unlock()
	if _, err := s.c.Apply(s.ctx, command.CmdNodeStatus, command.NodeStatusUpdate{ID: down,
		Status: model.NodeStatus{State: model.NodeDown, Message: "heartbeat failure", Timestamp: time.Now().UTC()}}); err != nil {
		t.Fatal(err)
	}
	s.eventually(20*time.Second, "tasks move off the down node", func() error {
		ts := s.live("web_nginx")
		if got := nodesOf(ts); len(got) != 2 || slices.Contains(got, down) {
			return fmt.Errorf("live on %v", got)
		}
		for _, task := range ts {
			if task.Status.State != model.TaskRunning {
				return fmt.Errorf("task %s is %s", task.Name, task.Status.State)
			}
		}
		return nil
	})
}

// A stack that depends on another (berth.yaml's depends_on) places its tasks once every
// service of that stack runs; they stay pending meanwhile, with the reason. Once
// placed, they keep running when the stack they waited for stops running.
func TestScenarioDependsOnOrdersStarts(t *testing.T) {
	s := newScenario(t, nil)
	s.addNodes(2)
	deploy := func(st *spec.Stack, dependsOn ...string) {
		t.Helper()
		cmd, err := control.StackCommand(&api.StackDeployRequest{Stack: st}, model.NewID)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stack.DependsOn = dependsOn
		idx, err := s.c.Apply(s.ctx, command.CmdStackDeploy, cmd)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.c.WaitApplied(s.ctx, idx); err != nil {
			t.Fatal(err)
		}
	}
	deploy(load(t, "db", `
services:
  postgres:
    image: postgres:16
    deploy:
      placement:
        constraints: [node.labels.db == yes]
`))
	deploy(load(t, "app", `
services:
  web:
    image: nginx:1
    deploy:
      replicas: 2
`), "db")
	s.converged("db_postgres", 0, 1, 1)
	st := s.converged("app_web", 0, 2, 2)
	const want = "waiting for stack db (depends_on): service db_postgres runs 0 of 1 tasks"
	if st.Pending[0].Reason != want {
		t.Fatalf("app_web pending for %q, want %q", st.Pending[0].Reason, want)
	}

	s.updateNode(command.NodeUpdate{ID: "node-2", LabelsAdd: map[string]string{"db": "yes"}})
	s.converged("db_postgres", 1, 1, 0)
	s.converged("app_web", 2, 2, 0)

	// db loses its node: app runs on.
	s.updateNode(command.NodeUpdate{ID: "node-2", LabelsRemove: []string{"db"}})
	s.converged("db_postgres", 0, 1, 1)
	s.converged("app_web", 2, 2, 0)
}

func TestScenarioFullSubnetKeepsTasksPending(t *testing.T) {
	s := newScenario(t, nil)
	s.addNode("node-1", nil)
	// A /29 has five task addresses beside its gateway: the cache holds three,
	// leaving two for web's four replicas (dnsrr: no VIP takes one).
	small := func(cache, web int) *spec.Stack {
		yaml := fmt.Sprintf(`
services:
  cache:
    image: redis:7
    deploy:
      endpoint_mode: dnsrr
      replicas: %d
`, cache)
		if web > 0 {
			yaml += fmt.Sprintf(`
  web:
    image: nginx:1
    deploy:
      endpoint_mode: dnsrr
      replicas: %d
`, web)
		}
		return load(t, "small", yaml+`
networks:
  default:
    ipam:
      config:
        - subnet: 10.77.0.0/29
`)
	}
	s.deploy(small(3, 0))
	s.converged("small_cache", 3, 3, 0)
	s.deploy(small(3, 4))
	st := s.converged("small_web", 2, 4, 2)
	if r := st.Pending[0].Reason; !strings.Contains(r, "network small_default: every address of subnet 10.77.0.0/29 is taken") {
		t.Fatalf("web's tasks pending for %q, want the full network named", r)
	}
	seen := map[string]string{}
	for _, svc := range []string{"small_cache", "small_web"} {
		for _, task := range s.live(svc) {
			for _, a := range task.Networks {
				if other, dup := seen[a.Addr]; dup {
					t.Fatalf("%s holds %s, as %s does", task.ID, a.Addr, other)
				}
				seen[a.Addr] = task.ID
			}
		}
	}

	// The cache scales down: its tasks' addresses come free and web's pending tasks
	// take them.
	s.deploy(small(1, 4))
	s.converged("small_cache", 1, 1, 0)
	s.converged("small_web", 4, 4, 0)
	for _, task := range s.live("small_web") {
		if len(task.Networks) != 1 {
			t.Errorf("web task %s runs with networks %v, want its address on small_default", task.ID, task.Networks)
		}
	}
}

// A global service's task that finds no address waits on its own node: the same task,
// through the rechecks.
func TestScenarioFullSubnetGlobalWaitsOnItsNode(t *testing.T) {
	s := newScenario(t, nil)
	s.addNodes(3)
	// A /30 has one task address beside its gateway (dnsrr: no VIP takes it).
	s.deploy(load(t, "mon", `
services:
  agent:
    image: busybox:1
    deploy:
      endpoint_mode: dnsrr
      mode: global
networks:
  default:
    ipam:
      config:
        - subnet: 10.78.0.0/30
`))
	st := s.converged("mon_agent", 1, 3, 2)
	if r := st.Pending[0].Reason; !strings.Contains(r, "every address of subnet 10.78.0.0/30 is taken") {
		t.Fatalf("pending for %q, want the full network named", r)
	}
	before := s.tasks("mon_agent")
	nodes := nodesOf(before)
	if !slices.Equal(nodes, []string{"node-1", "node-2", "node-3"}) {
		t.Fatalf("tasks on %v, want one on each node, pending ones included", nodes)
	}
	time.Sleep(reconciler.AddressRecheck + time.Second)
	after := s.tasks("mon_agent")
	if len(after) != len(before) {
		t.Fatalf("%d tasks after a recheck, %d before: the waiting tasks were replaced", len(after), len(before))
	}
	s.converged("mon_agent", 1, 3, 2)
}

// A service that publishes a port in ingress mode gets a VIP on each of its networks,
// the ingress network's last; its tasks attach to the ingress network after their
// own, on addresses no VIP and no node endpoint holds. Unpublishing the port rolls the
// tasks to ones without the ingress attachment, and the ingress VIP goes.
func TestScenarioIngressAttachmentsAndVIPs(t *testing.T) {
	s := newScenario(t, nil)
	s.addNodes(2)
	mesh := func(ports string) *spec.Stack {
		return load(t, "mesh", `
services:
  web:
    image: nginx:1
    deploy:
      replicas: 3`+ports+`
networks:
  default:
    ipam:
      config:
        - subnet: 10.79.0.0/28
`)
	}
	s.deploy(mesh(`
    ports:
      - "8080:80"`))
	s.converged("mesh_web", 3, 3, 0)
	tx := s.manager().Store.State().ReadTxn()
	def, err := tx.NetworkByName(nil, "mesh_default")
	if err != nil {
		t.Fatal(err)
	}
	ingress, err := command.IngressNetwork(tx)
	if err != nil {
		t.Fatal(err)
	}
	svc := s.service("mesh_web")
	if v := svc.Endpoint.VIPs; len(v) != 2 || v[0].Network != def.ID || v[1].Network != ingress.ID {
		t.Fatalf("VIPs %+v, want one on mesh_default then one on ingress", v)
	}
	held := map[string]string{}
	for _, v := range svc.Endpoint.VIPs {
		held[v.Addr] = "the VIP"
	}
	nodes, _ := tx.Nodes(nil)
	for _, n := range nodes {
		if len(n.Networks) != 1 || n.Networks[0].Network != ingress.ID {
			t.Fatalf("node %s endpoints %+v, want one on ingress", n.ID, n.Networks)
		}
		held[n.Networks[0].Addr] = "node " + n.ID
	}
	s.eventually(10*time.Second, "tasks attached to mesh_default then ingress", func() error {
		held := maps.Clone(held)
		for _, task := range s.live("mesh_web") {
			if len(task.Networks) != 2 || task.Networks[0].Network != def.ID || task.Networks[1].Network != ingress.ID {
				return fmt.Errorf("task %s networks %+v", task.ID, task.Networks)
			}
			for _, a := range task.Networks {
				if h, ok := held[a.Addr]; ok {
					t.Fatalf("task %s holds %s, as %s does", task.ID, a.Addr, h)
				}
				held[a.Addr] = "task " + task.ID
			}
		}
		return nil
	})

	s.deploy(mesh(""))
	s.eventually(20*time.Second, "tasks off the ingress network", func() error { return s.liveOn("mesh_web", 3, def.ID) })
	if v := s.service("mesh_web").Endpoint.VIPs; len(v) != 1 || v[0] != svc.Endpoint.VIPs[0] {
		t.Errorf("VIPs after unpublishing: %+v, want only %+v", v, svc.Endpoint.VIPs[0])
	}

	// A rollback to the publishing spec allocates nothing in the FSM; the leader asks
	// for the ingress VIP before it places the tasks, which join ingress again.
	if _, err := s.manager().Control.RollbackService(s.ctx, "mesh_web"); err != nil {
		t.Fatal(err)
	}
	s.eventually(20*time.Second, "rolled back onto the ingress network", func() error {
		if v := s.service("mesh_web").Endpoint.VIPs; len(v) != 2 || v[1].Network != ingress.ID {
			return fmt.Errorf("VIPs %+v", v)
		}
		return s.liveOn("mesh_web", 3, def.ID, ingress.ID)
	})
}

// liveOn reports, as an error, how the service's live tasks differ from n tasks
// attached to nets, in that order.
func (s *scenario) liveOn(service string, n int, nets ...string) error {
	live := s.live(service)
	if len(live) != n {
		return fmt.Errorf("%d live tasks, want %d", len(live), n)
	}
	for _, task := range live {
		var got []string
		for _, a := range task.Networks {
			got = append(got, a.Network)
		}
		if !slices.Equal(got, nets) {
			return fmt.Errorf("task %s on networks %v, want %v", task.ID, got, nets)
		}
	}
	return nil
}
