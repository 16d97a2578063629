package agent

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
)

// reporter sends status reports in batches, at most one per delay. Only the newest
// report per task is kept while a batch gathers: the managers apply states forward only, so an
// intermediate state that a later one overtook carries nothing. A batch that fails
// goes back to the queue behind anything newer.
//
// A batch stops gathering early when the last task of the node that was on its way
// to running gets there (see starting): nothing more is coming then, so the last
// "running" of a burst does not wait out the delay.
type reporter struct {
	api    API
	delay  time.Duration
	logger *slog.Logger

	mu      sync.Mutex
	pending map[string]model.TaskStatus
	kick    chan struct{}

	// onTheWay counts the tasks being prepared or started; settled is signalled
	// when it drops to zero, and stays signalled until a batch gathers.
	onTheWay atomic.Int32
	settled  chan struct{}
}

func newReporter(a API, delay time.Duration, logger *slog.Logger) *reporter {
	return &reporter{api: a, delay: delay, logger: logger,
		pending: map[string]model.TaskStatus{}, kick: make(chan struct{}, 1), settled: make(chan struct{}, 1)}
}

// starting tells the reporter that a task is on its way to running (true) or no
// longer is (false): it started, failed, or stopped wanting to run. Calls come in
// pairs.
func (r *reporter) starting(on bool) {
	if on {
		r.onTheWay.Add(1)
		return
	}
	if r.onTheWay.Add(-1) == 0 {
		select {
		case r.settled <- struct{}{}:
		default:
		}
	}
}

// gather waits up to wait for more reports, less if the last task on its way to
// running got there meanwhile (or since the last batch); false if ctx ended.
// Only the end of such a burst cuts a batch short: reports of tasks that stop keep
// to one batch per delay.
func (r *reporter) gather(ctx context.Context, wait time.Duration) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
	case <-r.settled:
	}
	return true
}

func (r *reporter) report(taskID string, st model.TaskStatus) {
	r.mu.Lock()
	if cur, ok := r.pending[taskID]; !ok || !st.State.Before(cur.State) {
		r.pending[taskID] = st
	}
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *reporter) run(ctx context.Context) {
	var backoff time.Duration
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		}
		// At most one batch per delay: a report after a quiet spell goes at once
		// (an exit is news), those that follow it gather until the delay is over
		// or the last task on its way to running gets there. A failed send waits
		// out its backoff.
		if backoff > 0 && !sleep(ctx, backoff) {
			return
		}
		if wait := time.Until(last.Add(r.delay)); wait > 0 && !r.gather(ctx, wait) {
			return
		}
		last = time.Now()
		r.mu.Lock()
		batch := make([]api.TaskStatusReport, 0, len(r.pending))
		for id, st := range r.pending {
			batch = append(batch, api.TaskStatusReport{TaskID: id, Status: st})
		}
		clear(r.pending)
		r.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		err := r.api.ReportTaskStatus(ctx, batch)
		if err == nil {
			backoff = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		r.logger.Warn("agent: reporting task status failed; retrying", "reports", len(batch), "error", err)
		backoff = min(max(2*backoff, 200*time.Millisecond), 5*time.Second)
		for _, rep := range batch {
			r.report(rep.TaskID, rep.Status)
		}
	}
}
