package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/cluster/scheduler"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store"
	"github.com/berthd/berth/spec"
)

// Store is what the loop needs of the leader's raft store (*store.Store has it all).
type Store interface {
	State() *state.Store
	// ApplyLeader writes a command if this manager leads, without forwarding.
	ApplyLeader(ctx context.Context, t command.Type, body any) (uint64, error)
	// Barrier waits until everything committed is applied here.
	Barrier(timeout time.Duration) error
}

// Defaults of Config.
const (
	DefaultMaxBatchTasks = 1024
	DefaultMaxPassTasks  = 65536
	DefaultInFlight      = 2
	DefaultDebounce      = 5 * time.Millisecond
	DefaultFeedCapacity  = 1 << 21
)

// Config is what Run needs. Zero fields get defaults.
type Config struct {
	Store  Store
	Logger *slog.Logger
	// Now is the clock (time.Now).
	Now func() time.Time
	// NewID makes task IDs (model.NewID).
	NewID func() string
	// Tune adjusts the orchestrator's options, which otherwise come from the
	// cluster's settings (orchestrator.OptionsFromSettings) at every pass.
	Tune func(*orchestrator.Options)
	// MaxBatchTasks bounds the task rows of one plan-apply entry; MaxPassTasks those
	// of one pass; InFlight the entries being committed at once.
	MaxBatchTasks int
	MaxPassTasks  int
	InFlight      int
	// Debounce is how long the loop waits after a change before a pass, to take in
	// the changes that come with it.
	Debounce time.Duration
	// FeedCapacity is how many unread changes the feed keeps before it gives up and
	// the loop reads the whole state again.
	FeedCapacity int
	// OnPass, when set, learns how long each pass took and whether it committed.
	OnPass func(took time.Duration, err error)
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewID == nil {
		c.NewID = model.NewID
	}
	if c.MaxBatchTasks <= 0 {
		c.MaxBatchTasks = DefaultMaxBatchTasks
	}
	if c.MaxPassTasks <= 0 {
		c.MaxPassTasks = DefaultMaxPassTasks
	}
	if c.InFlight <= 0 {
		c.InFlight = DefaultInFlight
	}
	if c.Debounce <= 0 {
		c.Debounce = DefaultDebounce
	}
	if c.FeedCapacity <= 0 {
		c.FeedCapacity = DefaultFeedCapacity
	}
}

// errAbandoned: the state store was replaced by a snapshot restore.
var errAbandoned = errors.New("state store replaced")

// loop is the leader's working memory. It is used by one goroutine.
type loop struct {
	cfg Config
	st  *state.Store
	// feed and pending: changes taken from the feed and not yet processed (those
	// committed after the read transaction of the coming pass).
	feed    *state.Feed
	pending []state.Event

	// built is the index the view was last read whole at; rebuild asks for that.
	built   uint64
	rebuild bool
	// infos is the scheduler's view of the nodes, nodeIdx a node ID's place in it.
	infos   []scheduler.NodeInfo
	nodeIdx map[string]int
	// specs are the services' specs as infos accounts for their tasks.
	specs map[string]*spec.Service
	// addrs are the addresses tasks hold on each network.
	addrs *addressBook

	dirty    map[string]struct{}
	allDirty bool
	// checks are the services' NextChecks.
	checks map[string]time.Time
	// ours are the indexes of the loop's own plan-apply entries.
	ours map[uint64]struct{}
	// failed holds, for each service the orchestrator could not plan, the spec
	// version that failed plus one (planFailed).
	failed map[string]uint64
	// lacking are the services that lack VIPs their spec asks for, for the FSM to
	// give them before the next pass places their tasks (askEndpoints).
	lacking map[string]struct{}
}

// Run reconciles until ctx is done, an error occurs, or the manager stops leading (a
// plan refused with store.ErrNotLeader). Call it only while the manager leads.
func Run(ctx context.Context, cfg Config) error {
	cfg.defaults()
	if err := cfg.Store.Barrier(30 * time.Second); err != nil {
		return fmt.Errorf("raft barrier before reconciling: %w", err)
	}
	for {
		l := &loop{cfg: cfg, st: cfg.Store.State()}
		err := l.run(ctx)
		if !errors.Is(err, errAbandoned) {
			return err
		}
		cfg.Logger.Info("state replaced by a snapshot: reconciling from the new one")
	}
}

func (l *loop) run(ctx context.Context) error {
	l.feed = l.st.Feed(l.cfg.FeedCapacity)
	defer l.feed.Close()
	l.rebuild = true
	l.checks = map[string]time.Time{}
	l.ours = map[uint64]struct{}{}
	l.dirty = map[string]struct{}{}
	l.failed = map[string]uint64{}
	l.lacking = map[string]struct{}{}
	for {
		if err := l.wait(ctx); err != nil {
			return err
		}
		tx := l.st.ReadTxn()
		l.catchUp(tx)
		if len(l.lacking) > 0 {
			if err := l.askEndpoints(ctx); err != nil {
				return err
			}
			continue // the pass reads the VIPs it gave
		}
		now := l.cfg.Now()
		for id, at := range l.checks {
			if !at.After(now) {
				l.dirty[id] = struct{}{}
				delete(l.checks, id)
			}
		}
		if l.allDirty {
			l.allDirty = false
			svcs, err := tx.Services(nil)
			if err != nil {
				return err
			}
			for _, s := range svcs {
				l.dirty[s.ID] = struct{}{}
			}
		}
		if len(l.dirty) == 0 {
			continue
		}
		err := l.pass(ctx, tx, now)
		if l.cfg.OnPass != nil {
			l.cfg.OnPass(l.cfg.Now().Sub(now), err)
		}
		if err != nil {
			if errors.Is(err, store.ErrNotLeader) || ctx.Err() != nil {
				return err
			}
			l.cfg.Logger.Error("could not commit the orchestrator's plans; retrying", "error", err)
			if !sleep(ctx, time.Second) {
				return ctx.Err()
			}
		}
	}
}

// wait returns when there may be work: changes, a due check, or a start.
func (l *loop) wait(ctx context.Context) error {
	if l.rebuild || len(l.dirty) > 0 || l.allDirty {
		return l.abandoned()
	}
	var timer <-chan time.Time
	if len(l.checks) > 0 {
		next := slices.MinFunc(slices.Collect(maps.Values(l.checks)), func(a, b time.Time) int { return a.Compare(b) })
		t := time.NewTimer(max(next.Sub(l.cfg.Now()), 0))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-l.st.AbandonCh():
		return errAbandoned
	case <-timer:
		return nil
	case <-l.feed.Notify():
	}
	// Let the changes that come together arrive together.
	if !sleep(ctx, l.cfg.Debounce) {
		return ctx.Err()
	}
	return l.abandoned()
}

func (l *loop) abandoned() error {
	select {
	case <-l.st.AbandonCh():
		return errAbandoned
	default:
		return nil
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// lookup is the service lookup the view's accounting uses.
func (l *loop) lookup(id string) *spec.Service { return l.specs[id] }

// catchUp brings the view to the read transaction tx: the feed's changes committed
// up to it, or a whole new read.
func (l *loop) catchUp(tx *state.ReadTxn) {
	events, lost := l.feed.Take()
	l.pending = append(l.pending, events...)
	if lost {
		l.cfg.Logger.Warn("the change feed overflowed: reading the whole state again")
		l.rebuild = true
	}
	at := tx.Index()
	n := 0
	for n < len(l.pending) && l.pending[n].Index <= at {
		n++
	}
	if !l.rebuild {
		for _, ev := range l.pending[:n] {
			if ev.Index > l.built {
				l.apply(tx, ev)
			}
			delete(l.ours, ev.Index)
			if l.rebuild {
				break
			}
		}
	}
	l.pending = slices.Delete(l.pending, 0, n)
	if l.rebuild {
		l.readAll(tx)
		clear(l.ours)
	}
}

// readAll reads the view whole, and makes every service (and every service ID that
// tasks still name) due for a pass.
func (l *loop) readAll(tx *state.ReadTxn) {
	l.rebuild = false
	l.built = tx.Index()
	nodes, _ := tx.Nodes(nil)
	tasks, _ := tx.Tasks(nil)
	svcs, _ := tx.Services(nil)
	l.specs = make(map[string]*spec.Service, len(svcs))
	for _, s := range svcs {
		l.specs[s.ID] = &s.Spec
		l.dirty[s.ID] = struct{}{}
		if lacksVIPs(s) {
			l.lacking[s.ID] = struct{}{}
		}
	}
	for _, t := range tasks {
		if _, ok := l.specs[t.ServiceID]; !ok {
			l.dirty[t.ServiceID] = struct{}{}
		}
	}
	l.infos = scheduler.NodeInfosFromState(nodes, tasks, l.lookup)
	l.addrs = newAddressBook(tasks, svcs, nodes)
	l.nodeIdx = make(map[string]int, len(nodes))
	for i, n := range nodes {
		l.nodeIdx[n.ID] = i
	}
	l.cfg.Logger.Debug("reconciler read the whole state", "index", l.built, "nodes", len(nodes),
		"services", len(svcs), "tasks", len(tasks))
}

// apply updates the view with one committed transaction.
func (l *loop) apply(tx *state.ReadTxn, ev state.Event) {
	_, ours := l.ours[ev.Index]
	for _, c := range ev.Changes {
		switch c.Table {
		case state.TableTasks:
			before, _ := c.Before.(*model.Task)
			after, _ := c.After.(*model.Task)
			if before != nil && before.NodeID != "" {
				if i, ok := l.nodeIdx[before.NodeID]; ok {
					l.infos[i].RemoveTask(before, l.lookup)
				}
			}
			if after != nil && after.NodeID != "" {
				if i, ok := l.nodeIdx[after.NodeID]; ok {
					l.infos[i].AddTask(after, l.lookup)
				}
			}
			l.addrs.remove(before)
			l.addrs.add(after)
			if !ours && l.matters(tx, before, after) {
				id := after
				if id == nil {
					id = before
				}
				l.dirty[id.ServiceID] = struct{}{}
			}
		case state.TableServices:
			before, _ := c.Before.(*model.Service)
			after, _ := c.After.(*model.Service)
			if l.addrs.serviceChanged(before, after) {
				l.rebuild = true
			}
			if after != nil && lacksVIPs(after) {
				l.lacking[after.ID] = struct{}{}
			}
			if after == nil {
				// Its tasks keep the spec they were counted with.
				l.dirty[before.ID] = struct{}{}
				continue
			}
			if before != nil && !sameFootprint(&before.Spec, &after.Spec) {
				l.rebuild = true
			}
			l.specs[after.ID] = &after.Spec
			// The loop's own write of a service needs no pass, except a rollback:
			// that plan is the swap alone, and the restored spec needs its own.
			if !ours || before == nil || before.SpecVersion != after.SpecVersion {
				l.dirty[after.ID] = struct{}{}
			}
		case state.TableNodes:
			before, _ := c.Before.(*model.Node)
			after, _ := c.After.(*model.Node)
			if l.addrs.nodeChanged(before, after) {
				l.rebuild = true
			}
			l.allDirty = true
			if before == nil || after == nil {
				l.rebuild = true
				continue
			}
			if i, ok := l.nodeIdx[after.ID]; ok {
				fresh := scheduler.NodeInfoFromState(after, nil, nil)
				old := &l.infos[i]
				fresh.Reserved, fresh.ServiceTasks, fresh.Tasks, fresh.HostPorts, fresh.Failures =
					old.Reserved, old.ServiceTasks, old.Tasks, old.HostPorts, old.Failures
				*old = fresh
			}
		}
	}
}

// matters reports whether a change of a task, made by someone else than the loop
// (an agent), asks for a decision (see the package documentation).
func (l *loop) matters(tx *state.ReadTxn, before, after *model.Task) bool {
	switch {
	case before == nil || after == nil:
		return true
	case before.DesiredState != after.DesiredState || before.NodeID != after.NodeID:
		return true
	case after.Status.State.Terminal():
		return before.Status.State != after.Status.State
	case after.Status.State == model.TaskRunning && before.Status.State != model.TaskRunning:
		svc, err := tx.Service(nil, after.ServiceID)
		if err != nil {
			return true
		}
		us := svc.UpdateStatus.State
		return us == model.UpdateUpdating || us == model.UpdateRollbackStarted
	}
	return false
}

// sameFootprint reports whether two specs make their tasks hold the same resources
// and host ports on their nodes.
func sameFootprint(a, b *spec.Service) bool {
	return reflect.DeepEqual(a.Deploy.Resources.Reservations, b.Deploy.Resources.Reservations) &&
		slices.Equal(hostPorts(a), hostPorts(b))
}

func hostPorts(s *spec.Service) []spec.Port {
	var out []spec.Port
	for _, p := range s.Ports {
		if p.Mode == spec.PortModeHost {
			out = append(out, p)
		}
	}
	return out
}

// PassOptions are the orchestrator's options under the cluster's settings.
func PassOptions(tx *state.ReadTxn) orchestrator.Options {
	settings := model.DefaultSettings()
	if c, err := tx.Cluster(nil); err == nil {
		settings = c.Settings
	}
	return orchestrator.OptionsFromSettings(settings)
}

// dependencyRecheck is how often a service held by depends_on looks at the stacks it
// waits for.
const dependencyRecheck = time.Second

// earliest is the earlier of two times, a zero one counting as none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// placement is what a pass recorded in the view for one service on one node.
type placement struct {
	service, node string
}

// pass reconciles the dirty services from tx and commits their plans.
func (l *loop) pass(ctx context.Context, tx *state.ReadTxn, now time.Time) error {
	start := time.Now()
	opts := PassOptions(tx)
	if l.cfg.Tune != nil {
		l.cfg.Tune(&opts)
	}
	nodes, err := tx.Nodes(nil)
	if err != nil {
		return err
	}
	p := orchestrator.NewPass(nodes, l.infos, opts, now, l.cfg.NewID)

	ids := slices.Sorted(maps.Keys(l.dirty))
	clear(l.dirty)
	prop := newProposer(ctx, l.cfg.Store, l.cfg.InFlight)
	placed := map[placement]int{}
	batch := &command.PlanApply{}
	batchTasks, passTasks, services := 0, 0, 0
	var created, updated, deleted int
	for i, id := range ids {
		if passTasks >= l.cfg.MaxPassTasks {
			for _, rest := range ids[i:] {
				l.dirty[rest] = struct{}{}
			}
			break
		}
		services++
		sp, err := PlanService(tx, p, id)
		if err != nil {
			return err
		}
		if sp == nil {
			delete(l.checks, id)
			continue
		}
		if sp.Failed != nil {
			l.planFailed(sp)
		} else {
			delete(l.failed, id)
		}
		plan := sp.Plan
		if sp.Held {
			plan.NextCheck = earliest(plan.NextCheck, now.Add(dependencyRecheck))
		}
		for _, t := range plan.Create {
			if t.Status.State == model.TaskAssigned {
				placed[placement{id, t.NodeID}]++
			}
		}
		for _, u := range plan.Update {
			if u.Status != nil && u.Status.State == model.TaskAssigned {
				placed[placement{id, u.NodeID}]++
			}
		}
		if svc := sp.Service; svc != nil && attaches(&svc.Spec) && (len(plan.Create) > 0 || len(plan.Update) > 0) {
			nets, netsErr := serviceNetworks(tx, svc)
			if l.addrs.assign(tx, &plan, nets, netsErr, svc.Spec.Deploy.Global(), now) {
				plan.NextCheck = earliest(plan.NextCheck, now.Add(addressRecheck))
			}
		}
		if plan.NextCheck.IsZero() {
			delete(l.checks, id)
		} else {
			l.checks[id] = plan.NextCheck
		}
		if plan.Empty() {
			continue
		}
		created, updated, deleted = created+len(plan.Create), updated+len(plan.Update), deleted+len(plan.Delete)
		passTasks += plan.Tasks()
		for _, part := range split(&plan, l.cfg.MaxBatchTasks) {
			if batchTasks > 0 && batchTasks+part.Tasks() > l.cfg.MaxBatchTasks {
				prop.send(batch)
				batch, batchTasks = &command.PlanApply{}, 0
			}
			batch.Plans = append(batch.Plans, part)
			batchTasks += part.Tasks()
		}
	}
	if len(batch.Plans) > 0 {
		prop.send(batch)
	}
	indexes, err := prop.wait()
	for _, idx := range indexes {
		l.ours[idx] = struct{}{}
	}
	// Take the pass's placements out of the view: the feed brings in what was written.
	for pl, n := range placed {
		i, ok := l.nodeIdx[pl.node]
		if !ok {
			continue
		}
		t := &model.Task{ServiceID: pl.service, NodeID: pl.node, DesiredState: model.TaskRunning,
			Status: model.TaskStatus{State: model.TaskAssigned}}
		for range n {
			l.infos[i].RemoveTask(t, l.lookup)
		}
	}
	if err != nil {
		// What was not committed must be decided again, from a view read anew: the
		// address book holds the addresses given to tasks that were not written.
		for _, id := range ids[:services] {
			l.dirty[id] = struct{}{}
		}
		l.rebuild = true
		return err
	}
	if created+updated+deleted > 0 {
		l.cfg.Logger.Debug("orchestrator pass", "services", services, "created", created, "updated", updated,
			"deleted", deleted, "entries", len(indexes), "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// planFailed logs a service the orchestrator could not plan; its plan only records the
// failure on the service. The failed run may have left placements in the view, so
// the view is read anew, once per failing spec: a service that fails every time it is
// planned must not make every pass read the whole state again.
func (l *loop) planFailed(sp *ServicePlan) {
	name := sp.ServiceID
	if sp.Service != nil {
		name = sp.Service.Name
	}
	if l.failed[sp.ServiceID] == sp.SpecVersion+1 {
		l.cfg.Logger.Warn("could not plan a service again: its tasks are left as they are", "service", name, "error", sp.Failed)
		return
	}
	l.failed[sp.ServiceID] = sp.SpecVersion + 1
	l.cfg.Logger.Error("could not plan a service: its tasks are left as they are", "service", name,
		"error", sp.Failed, "stack_trace", string(sp.Trace))
	l.rebuild = true
}

// split cuts a plan too big for one entry into plans of the same service and version,
// each applied on its own by the FSM: the rows of one plan are independent of each
// other, and the service's change rides with the first.
func split(p *orchestrator.Plan, maxTasks int) []*orchestrator.Plan {
	if p.Tasks() <= maxTasks {
		return []*orchestrator.Plan{p}
	}
	var out []*orchestrator.Plan
	cur := &orchestrator.Plan{ServiceID: p.ServiceID, SpecVersion: p.SpecVersion, Service: p.Service}
	room := maxTasks
	flush := func() {
		out = append(out, cur)
		cur = &orchestrator.Plan{ServiceID: p.ServiceID, SpecVersion: p.SpecVersion}
		room = maxTasks
	}
	for _, t := range p.Create {
		if room == 0 {
			flush()
		}
		cur.Create = append(cur.Create, t)
		room--
	}
	for _, u := range p.Update {
		if room == 0 {
			flush()
		}
		cur.Update = append(cur.Update, u)
		room--
	}
	for _, id := range p.Delete {
		if room == 0 {
			flush()
		}
		cur.Delete = append(cur.Delete, id)
		room--
	}
	if cur.Tasks() > 0 || cur.Service != nil {
		out = append(out, cur)
	}
	return out
}

// proposer commits plan-apply entries, a few at once, while the pass goes on.
type proposer struct {
	ctx context.Context
	st  Store
	sem chan struct{}
	wg  sync.WaitGroup

	mu      sync.Mutex
	err     error
	indexes []uint64
}

func newProposer(ctx context.Context, st Store, inFlight int) *proposer {
	return &proposer{ctx: ctx, st: st, sem: make(chan struct{}, inFlight)}
}

func (p *proposer) send(b *command.PlanApply) {
	p.mu.Lock()
	failed := p.err != nil
	p.mu.Unlock()
	if failed {
		return
	}
	select {
	case p.sem <- struct{}{}:
	case <-p.ctx.Done():
		p.fail(p.ctx.Err())
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() { <-p.sem }()
		idx, err := p.st.ApplyLeader(p.ctx, command.CmdPlanApply, b)
		p.mu.Lock()
		defer p.mu.Unlock()
		if idx > 0 {
			p.indexes = append(p.indexes, idx)
		}
		if err != nil && p.err == nil {
			p.err = fmt.Errorf("plan-apply of %d tasks: %w", b.Tasks(), err)
		}
	}()
}

func (p *proposer) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}

func (p *proposer) wait() ([]uint64, error) {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.indexes, p.err
}

// RunWhileLeader runs Run whenever the manager leads, as leaderCh says (a channel of
// its own: store.LeaderCh gives one per call), until ctx is done. A Run that fails
// while the manager still leads is started again after a second.
func RunWhileLeader(ctx context.Context, leaderCh <-chan bool, isLeader func() bool, cfg Config) {
	cfg.defaults()
	store.RunWhileLeader(ctx, leaderCh, isLeader, cfg.Logger, "orchestrator", func(ctx context.Context) error { return Run(ctx, cfg) })
}
