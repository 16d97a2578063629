package applier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berthd/berth/applier/dirwatch"
	"github.com/berthd/berth/applier/notify"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// Config is what Run needs. Zero fields get defaults.
type Config struct {
	Cluster Cluster
	// Dir holds the sources' repositories: the mirrors of pull sources and the
	// repositories that push sources receive.
	Dir    string
	Now    func() time.Time
	Logger *slog.Logger
	// FetchTimeout bounds one fetch from a remote (2 minutes).
	FetchTimeout time.Duration
	// Debounce is how long a folder source must be quiet before it syncs (500ms).
	Debounce time.Duration
	// Reread bounds how long the applier waits on the sources table before it
	// reads it again anyway (30s).
	Reread time.Duration
	// Mirrors holds the pull sources' mirrors: Run and PreviewSource on one
	// manager share it (nil: a set of their own).
	Mirrors *Mirrors
	// PushPlans holds the plans of the pushes the push server (PushConfig.Plans) took
	// on this manager, for the syncs they request (nil: none).
	PushPlans *PushPlans
	// Metrics counts the syncs (nil: not counted).
	Metrics *Metrics
	// Notify tunes the delivery of notifications and commit statuses.
	Notify notify.Options

	// notifier is Run's: it tells the sources' notification targets about syncs.
	notifier *notifier
}

func (c *Config) defaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = 2 * time.Minute
	}
	if c.Debounce <= 0 {
		c.Debounce = 500 * time.Millisecond
	}
	if c.Reread <= 0 {
		c.Reread = 30 * time.Second
	}
	if c.Mirrors == nil {
		c.Mirrors = NewMirrors()
	}
	if c.PushPlans == nil {
		c.PushPlans = NewPushPlans()
	}
}

// readTxn reads the cluster's state as this manager applied it.
func (c *Config) readTxn() (*state.ReadTxn, error) {
	st, err := c.Cluster.State()
	if err != nil {
		return nil, err
	}
	return st.ReadTxn(), nil
}

// Run syncs every source until ctx ends; it runs on the raft leader only (the
// daemon starts it when its manager leads). Each source has a loop of its own, so that a slow remote
// never holds up another source.
func Run(ctx context.Context, cfg Config) error {
	cfg.defaults()
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return err
	}
	// A new leader's state may still lack the previous term's last entries: a sync
	// decided on it would answer a request again, or apply again a revision the
	// previous leader applied, from a row that is no longer the source's.
	if err := cfg.Cluster.Barrier(30 * time.Second); err != nil {
		return fmt.Errorf("raft barrier before syncing: %w", err)
	}
	cfg.notifier = newNotifier(ctx, &cfg)
	loops := map[string]*sourceLoop{}
	var wg sync.WaitGroup
	defer func() {
		for _, l := range loops {
			l.cancel()
		}
		wg.Wait()
		cfg.notifier.close()
	}()
	var index uint64
	for {
		// Read again every Reread at least, whatever the watch says.
		wctx, cancel := context.WithTimeout(ctx, cfg.Reread)
		srcs, idx, err := cfg.Cluster.WaitSources(wctx, index)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, state.ErrAbandoned):
			// A snapshot restore replaced the state: read the new one at once.
			index = 0
			continue
		case err != nil:
			return err
		}
		index = idx
		seen := map[string]bool{}
		for _, src := range srcs {
			seen[src.Name] = true
			if l := loops[src.Name]; l != nil && l.kind == src.Kind {
				l.update(src)
				continue
			} else if l != nil {
				l.cancel()
			}
			if loops[src.Name] == nil {
				cfg.notifier.resume(src)
			}
			l := newSourceLoop(ctx, &cfg, src)
			loops[src.Name] = l
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.run()
			}()
		}
		for name, l := range loops {
			if !seen[name] {
				l.cancel()
				delete(loops, name)
				// A removed source's repository goes with it; a source added again
				// under the name starts afresh.
				go func() { <-l.done; _ = os.RemoveAll(filepath.Join(cfg.Dir, name)) }()
			}
		}
	}
}

// sourceLoop syncs one source: at start, on every interval, on every sync request
// (`source sync`, a webhook) and, for a folder, on every change in it.
type sourceLoop struct {
	cfg    *Config
	name   string
	kind   model.SourceKind
	rows   chan *model.Source // the newest row not yet read
	kick   chan struct{}      // a change in a folder source
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	syncer *syncer
}

func newSourceLoop(ctx context.Context, cfg *Config, src *model.Source) *sourceLoop {
	l := &sourceLoop{cfg: cfg, name: src.Name, kind: src.Kind, rows: make(chan *model.Source, 1),
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(ctx)
	l.rows <- src
	l.syncer = newSyncer(cfg, src.Name)
	return l
}

func (l *sourceLoop) update(src *model.Source) {
	select {
	case <-l.rows:
	default:
	}
	l.rows <- src
}

func (l *sourceLoop) run() {
	defer close(l.done)
	ctx := l.ctx
	defer l.cancel()
	defer l.syncer.close()
	logger := l.cfg.Logger.With("source", l.name)
	src := <-l.rows
	if src.Kind == model.SourceDir {
		go l.watchDir(ctx, src.URL, logger)
	}
	// The first pass checks the source at once: a new leader continues from the
	// last applied revision, and applies nothing when the source has not moved.
	due := true
	// taken is the request count the last sync answered. Rows written before that
	// sync's answer still show those requests unanswered: they ask for nothing new, so
	// requests that arrive during a sync make one more sync, not two.
	var taken uint64
	var timer *time.Timer
	var tick <-chan time.Time
	for {
		if due && !src.Suspended {
			start := time.Now()
			l.cfg.Metrics.observeSync(src.Name, l.syncer.sync(ctx, src, logger), time.Since(start))
			taken = max(taken, src.SyncRequests)
		}
		due = false
		if timer != nil {
			timer.Stop()
		}
		tick = nil
		// A folder's changes come by its watch; its interval is for drift, which
		// no file change shows.
		if src.Interval > 0 && src.Kind != model.SourceGitPush {
			timer = time.NewTimer(time.Duration(src.Interval))
			tick = timer.C
		}
	wait:
		select {
		case <-ctx.Done():
			return
		case next := <-l.rows:
			resumed := src.Suspended && !next.Suspended
			src = next
			if !resumed && next.SyncRequests <= max(next.AnsweredRequests, taken) {
				// Rows change at every sync this loop writes; only requests count.
				goto wait
			}
			due = true
		case <-tick:
			due = true
		case <-l.kick:
			due = true
		}
	}
}

// watchDir kicks the loop at every burst of changes in a folder source; a watch
// that fails (the folder is missing, say) is retried, and the sync reports why.
func (l *sourceLoop) watchDir(ctx context.Context, dir string, logger *slog.Logger) {
	for ctx.Err() == nil {
		err := dirwatch.Watch(ctx, dir, l.cfg.Debounce, func() {
			select {
			case l.kick <- struct{}{}:
			default:
			}
		}, dirwatch.WithLogger(logger))
		if ctx.Err() != nil {
			return
		}
		logger.Warn("folder source: watching stopped; retrying", "dir", dir, "error", err)
		t := time.NewTimer(10 * time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}
