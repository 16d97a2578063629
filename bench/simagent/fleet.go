package simagent

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// FleetConfig is what a Fleet needs.
type FleetConfig struct {
	// State is the state store of the manager the fleet's agents talk to; it is
	// asked again when the store is replaced by a snapshot restore.
	State func() *state.Store
	// Report sends one node's reports, as that node's agent would.
	Report func(ctx context.Context, nodeID string, reports []api.TaskStatusReport) error
	Logger *slog.Logger
	Now    func() time.Time
	// Parallel bounds the reports in flight (256).
	Parallel int
}

// Fleet plays the agents of every node at once, in process: it watches the task
// changes of a manager's state feed rather than one blocking query per node (a
// thousand agents each woken by every write would measure the simulation, not the
// cluster), starts what is assigned and stops what is told to stop, reporting per
// node through Report. It also counts the tasks that run, for the benchmark's finish
// line.
type Fleet struct {
	cfg     FleetConfig
	running atomic.Int64
	// resync asks for a whole new read after a report failed: the fleet acts on
	// changes, and a lost report would otherwise never be sent again.
	resync atomic.Bool
	kick   chan struct{}
	sem    chan struct{}
	wg     sync.WaitGroup
}

// NewFleet returns a fleet; Run runs it.
func NewFleet(cfg FleetConfig) *Fleet {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 256
	}
	return &Fleet{cfg: cfg, sem: make(chan struct{}, cfg.Parallel), kick: make(chan struct{}, 1)}
}

// Running is the number of tasks that run and are meant to, as the fleet's manager
// has applied them.
func (f *Fleet) Running() int64 { return f.running.Load() }

// Run runs the fleet until ctx is done.
func (f *Fleet) Run(ctx context.Context) error {
	defer f.wg.Wait()
	for ctx.Err() == nil {
		st := f.cfg.State()
		feed := st.Feed(1 << 22)
		f.follow(ctx, st, feed)
		feed.Close()
	}
	return nil
}

func countsAsRunning(t *model.Task) bool {
	return t != nil && t.Status.State == model.TaskRunning && t.DesiredState == model.TaskRunning
}

// follow reads the state whole, then follows the feed until it fails or the store is
// replaced.
func (f *Fleet) follow(ctx context.Context, st *state.Store, feed *state.Feed) {
	tx := st.ReadTxn()
	at := tx.Index()
	tasks, _ := tx.Tasks(nil)
	var n int64
	todo := map[string][]api.TaskStatusReport{}
	var wake time.Time
	for _, t := range tasks {
		if countsAsRunning(t) {
			n++
		}
		f.decide(t, todo, &wake)
	}
	f.running.Store(n)
	f.send(ctx, todo)
	for {
		if f.resync.Swap(false) {
			return
		}
		timer := time.NewTimer(time.Hour)
		if !wake.IsZero() {
			timer.Reset(max(wake.Sub(f.cfg.Now()), time.Millisecond))
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-st.AbandonCh():
			timer.Stop()
			return
		case <-timer.C:
			// A restart delay ended: look at everything again.
			return
		case <-f.kick:
			timer.Stop()
			continue
		case <-feed.Notify():
			timer.Stop()
		}
		events, lost := feed.Take()
		if lost {
			return
		}
		todo = map[string][]api.TaskStatusReport{}
		for _, ev := range events {
			if ev.Index <= at {
				continue
			}
			for _, c := range ev.Changes {
				if c.Table != state.TableTasks {
					continue
				}
				before, _ := c.Before.(*model.Task)
				after, _ := c.After.(*model.Task)
				if countsAsRunning(before) {
					f.running.Add(-1)
				}
				if countsAsRunning(after) {
					f.running.Add(1)
				}
				if after != nil {
					f.decide(after, todo, &wake)
				}
			}
		}
		f.send(ctx, todo)
	}
}

// decide adds what t's agent would report now.
func (f *Fleet) decide(t *model.Task, todo map[string][]api.TaskStatusReport, wake *time.Time) {
	st := t.Status.State
	if t.NodeID == "" || st.Before(model.TaskAssigned) || st.Terminal() {
		return
	}
	now := f.cfg.Now().UTC()
	var s model.TaskStatus
	switch {
	case t.DesiredState != model.TaskRunning && t.DesiredState != model.TaskComplete:
		s = model.TaskStatus{State: model.TaskShutdown, Message: "shutdown"}
	case st == model.TaskRunning:
		return
	case now.Before(t.NotBefore):
		if wake.IsZero() || t.NotBefore.Before(*wake) {
			*wake = t.NotBefore
		}
		return
	case t.DesiredState == model.TaskComplete:
		s = exited(0)
	default:
		s = model.TaskStatus{State: model.TaskRunning, Message: "started"}
	}
	s.Timestamp = now
	todo[t.NodeID] = append(todo[t.NodeID], api.TaskStatusReport{TaskID: t.ID, Status: s})
}

// send reports per node, a bounded number at once, without waiting for them: the
// feed brings what they changed.
func (f *Fleet) send(ctx context.Context, todo map[string][]api.TaskStatusReport) {
	for node, reports := range todo {
		select {
		case f.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer func() { <-f.sem }()
			if err := f.cfg.Report(ctx, node, reports); err != nil && ctx.Err() == nil {
				f.cfg.Logger.Warn("simulated fleet: report failed", "node", node, "reports", len(reports), "error", err)
				f.resync.Store(true)
				select {
				case f.kick <- struct{}{}:
				default:
				}
			}
		}()
	}
}
