package webhook

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// queuedTimeout bounds a queued request, which no caller's context bounds: the callers
// it answers may each give up, and the source's next request waits for it.
const queuedTimeout = 30 * time.Second

// coalescer merges the sync requests of a source: while one is being made, every
// request that arrives joins a single queued one, made when the first returns. Each
// caller is answered by a request made after it arrived, so the sync it triggers sees
// the push the caller reports; a burst of pushes costs two requests, not one each.
type coalescer struct {
	mu      sync.Mutex
	current map[string]*flight // the request being made, per source
}

// flight is one request to the cluster and the callers it answers.
type flight struct {
	revision string // the newest caller's; read when the request starts
	done     chan struct{}
	err      error
	next     *flight // the request queued behind this one
}

func newCoalescer() *coalescer { return &coalescer{current: map[string]*flight{}} }

// syncRequest asks the cluster for a sync of source at revision.
type syncRequest func(ctx context.Context, source, revision string) error

// do makes request for source, or joins the one queued behind the request in progress,
// which then asks for the revision of the newest caller. It reports whether it joined,
// and the error of the request that answers the caller. A caller that gives up (ctx
// ends) does not cancel a request others wait for.
func (c *coalescer) do(ctx context.Context, log *slog.Logger, source, revision string, request syncRequest) (joined bool, err error) {
	c.mu.Lock()
	cur := c.current[source]
	if cur == nil {
		f := &flight{revision: revision, done: make(chan struct{})}
		c.current[source] = f
		c.mu.Unlock()
		c.run(ctx, source, f, request)
		return false, f.err
	}
	f, first := cur.next, cur.next == nil
	if first {
		f = &flight{done: make(chan struct{})}
		cur.next = f
	}
	f.revision = revision
	c.mu.Unlock()
	log.DebugContext(ctx, "webhook sync request joins the one queued behind the request in progress")
	if first {
		// Only this caller starts the queued request, whenever the current one ends.
		go func() {
			<-cur.done
			qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), queuedTimeout)
			defer cancel()
			c.run(qctx, source, f, request)
		}()
	}
	select {
	case <-f.done:
		return true, f.err
	case <-ctx.Done():
		return true, ctx.Err()
	}
}

// run makes the request of f, then hands the source to the request queued behind it.
func (c *coalescer) run(ctx context.Context, source string, f *flight, request syncRequest) {
	c.mu.Lock()
	revision := f.revision
	c.mu.Unlock()
	err := request(ctx, source, revision)
	c.mu.Lock()
	f.err = err
	if f.next != nil {
		c.current[source] = f.next
	} else {
		delete(c.current, source)
	}
	c.mu.Unlock()
	close(f.done)
}
