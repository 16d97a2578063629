package store

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// leaderFeed hands raft's leadership changes to any number of subscribers. raft has
// one channel: two loops reading it would each miss the changes the other took.
type leaderFeed struct {
	mu   sync.Mutex
	subs []chan bool
	done chan struct{}
}

func newLeaderFeed(from <-chan bool) *leaderFeed {
	f := &leaderFeed{done: make(chan struct{})}
	go func() {
		for {
			select {
			case <-f.done:
				return
			case leading := <-from:
				f.publish(leading)
			}
		}
	}()
	return f
}

// subscribe returns a channel that holds the latest change not yet read: like raft's
// own, a slow reader sees the newest value, never a stale one.
func (f *leaderFeed) subscribe() <-chan bool {
	ch := make(chan bool, 1)
	f.mu.Lock()
	f.subs = append(f.subs, ch)
	f.mu.Unlock()
	return ch
}

func (f *leaderFeed) publish(leading bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.subs {
		select {
		case <-ch:
		default:
		}
		ch <- leading
	}
}

func (f *leaderFeed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.done:
	default:
		close(f.done)
	}
}

// RunWhileLeader runs run whenever this manager leads, as leaderCh says, until ctx is
// done; run's context ends when leadership is lost. A run that fails while the
// manager still leads is started again after a second; ErrNotLeader ends it quietly.
// name is what the log calls it.
func RunWhileLeader(ctx context.Context, leaderCh <-chan bool, isLeader func() bool, logger *slog.Logger, name string, run func(context.Context) error) {
	var (
		cancel context.CancelFunc
		done   chan struct{}
	)
	start := func() {
		var lctx context.Context
		lctx, cancel = context.WithCancel(ctx)
		done = make(chan struct{})
		go func() {
			defer close(done)
			logger.Info("leading: " + name + " started")
			for {
				err := run(lctx)
				if lctx.Err() != nil || errors.Is(err, ErrNotLeader) {
					return
				}
				logger.Error(name+" stopped; restarting it", "error", err)
				t := time.NewTimer(time.Second)
				select {
				case <-lctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
		}()
	}
	stop := func() {
		if cancel != nil {
			cancel()
			<-done
			cancel = nil
			logger.Info(name + " stopped")
		}
	}
	defer stop()
	// A notification already waiting is older than what isLeader says now.
	select {
	case <-leaderCh:
	default:
	}
	if isLeader() {
		start()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case leading := <-leaderCh:
			// Two gains in a row mean leadership was lost in between: start over
			// from a barrier and a fresh read.
			stop()
			if leading {
				start()
			}
		}
	}
}
