package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/berthd/berth/cluster/model"
)

// Results a delivery is counted with.
const (
	ResultSent = "sent"
	// ResultFailed: refused by the endpoint, or failed every try.
	ResultFailed = "failed"
	// ResultOverflow: dropped from a full queue, the oldest first.
	ResultOverflow = "overflow"
)

// Options tune a Dispatcher. Zero fields get defaults.
type Options struct {
	// Client makes the requests (one with a 10s timeout).
	Client *http.Client
	// QueueSize bounds each target's queue (64); a full queue drops its oldest.
	QueueSize int
	// MaxTries is how many times a delivery is tried before it is dropped (5).
	MaxTries int
	// MinBackoff is the wait after the first failure (1s), doubled after each
	// next one up to MaxBackoff (1m).
	MinBackoff, MaxBackoff time.Duration
	// After waits between tries (time.After): tests give a clock of their own.
	After  func(time.Duration) <-chan time.Time
	Logger *slog.Logger
	// Count counts each delivery's outcome by kind and result (nil: not counted).
	Count func(kind, result string)
}

func (o *Options) defaults() {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 64
	}
	if o.MaxTries <= 0 {
		o.MaxTries = 5
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(time.Minute, o.MinBackoff)
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Count == nil {
		o.Count = func(string, string) {}
	}
}

// Dispatcher sends deliveries in the background, a queue and a goroutine per
// target, until Close.
type Dispatcher struct {
	opts   Options
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	queues map[string]*queue
}

// queue holds one target's deliveries not yet made.
type queue struct {
	items []Delivery
	wake  chan struct{}
}

// New starts a dispatcher; Close stops it.
func New(opts Options) *Dispatcher {
	opts.defaults()
	d := &Dispatcher{opts: opts, queues: map[string]*queue{}}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d
}

// Close stops every delivery, made or waiting, and returns once their goroutines ended.
func (d *Dispatcher) Close() {
	d.cancel()
	d.wg.Wait()
}

// Enqueue queues del and returns at once: a full queue drops its oldest delivery.
func (d *Dispatcher) Enqueue(del Delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx.Err() != nil {
		return
	}
	q := d.queues[del.Queue]
	if q == nil {
		q = &queue{wake: make(chan struct{}, 1)}
		d.queues[del.Queue] = q
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.work(q)
		}()
	}
	if len(q.items) >= d.opts.QueueSize {
		dropped := q.items[0]
		q.items = q.items[1:]
		d.opts.Count(dropped.Kind, ResultOverflow)
		d.opts.Logger.Warn("notification dropped: its target's queue is full", "kind", dropped.Kind, "url", model.MaskURL(dropped.URL))
	}
	q.items = append(q.items, del)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// work makes one queue's deliveries in order.
func (d *Dispatcher) work(q *queue) {
	for {
		d.mu.Lock()
		var del Delivery
		ok := len(q.items) > 0
		if ok {
			del, q.items = q.items[0], q.items[1:]
		}
		d.mu.Unlock()
		if ok {
			d.deliver(del)
			continue
		}
		select {
		case <-d.ctx.Done():
			return
		case <-q.wake:
		}
	}
}

// deliver tries del until it is taken, refused, or has failed MaxTries times.
func (d *Dispatcher) deliver(del Delivery) {
	wait := d.opts.MinBackoff
	for try := 1; ; try++ {
		err := d.send(del)
		if err == nil {
			d.opts.Count(del.Kind, ResultSent)
			return
		}
		if d.ctx.Err() != nil {
			return
		}
		var perm *permanentError
		if errors.As(err, &perm) || try >= d.opts.MaxTries {
			d.opts.Count(del.Kind, ResultFailed)
			d.opts.Logger.Warn("notification dropped", "kind", del.Kind, "url", model.MaskURL(del.URL), "tries", try, "error", err)
			return
		}
		select {
		case <-d.ctx.Done():
			return
		case <-d.opts.After(wait):
		}
		wait = min(2*wait, d.opts.MaxBackoff)
	}
}

// permanentError: the delivery cannot succeed; trying again would not help.
type permanentError struct{ msg string }

func (e *permanentError) Error() string { return e.msg }

func (d *Dispatcher) send(del Delivery) error {
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, del.URL, bytes.NewReader(del.Body))
	if err != nil {
		return &permanentError{err.Error()}
	}
	req.Header = del.Header.Clone()
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		// The URL may carry a secret, and the error names it.
		if uerr, ok := errors.AsType[*url.Error](err); ok {
			err = uerr.Err
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return &permanentError{fmt.Sprintf("the endpoint refused it: HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))}
}
