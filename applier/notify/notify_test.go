package notify

import (
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/model"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// request is what a test's endpoint received.
type request struct {
	method, path string
	header       http.Header
	body         string
}

// endpoint is an HTTP server on loopback that records what it receives and answers
// with the codes given, then 200.
type endpoint struct {
	*httptest.Server
	mu    sync.Mutex
	got   []request
	codes []int
	recv  chan request
}

func newEndpoint(t *testing.T, codes ...int) *endpoint {
	e := &endpoint{codes: codes, recv: make(chan request, 100)}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		req := request{r.Method, r.URL.EscapedPath(), r.Header.Clone(), string(b)}
		e.mu.Lock()
		e.got = append(e.got, req)
		code := http.StatusOK
		if len(e.codes) > 0 {
			code, e.codes = e.codes[0], e.codes[1:]
		}
		e.mu.Unlock()
		w.WriteHeader(code)
		e.recv <- req
	}))
	t.Cleanup(e.Close)
	return e
}

// next waits for the endpoint's next request.
func (e *endpoint) next(t *testing.T) request {
	t.Helper()
	return receive(t, e.recv, "the endpoint received nothing")
}

// receive waits for the next value on ch.
func receive[T any](t *testing.T, ch chan T, none string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatal(none)
		var zero T
		return zero
	}
}

// counts hands what a dispatcher counted to the test, as "kind result".
type counts struct{ ch chan string }

func newCounts() *counts { return &counts{ch: make(chan string, 100)} }

func (c *counts) count(kind, result string) {
	c.ch <- kind + " " + result
}

func (c *counts) next(t *testing.T) string {
	t.Helper()
	return receive(t, c.ch, "nothing was counted")
}

// instant is a clock whose waits end at once, recording how long they were.
type instant struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (c *instant) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- time.Time{}
	return ch
}

func newDispatcher(t *testing.T, opts Options) *Dispatcher {
	d := New(opts)
	t.Cleanup(d.Close)
	return d
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./applier/notify -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("body differs from %s (run go test ./applier/notify -update to accept it)\n--- got\n%s--- want\n%s", path, got, want)
	}
}

var (
	when = time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	sha  = "3f2a9c1e5b7d4a6f8e0c2b4d6f8a0c2e4b6d8f0a"
)

func TestEventBodies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format model.NotifyFormat
		ev     Event
	}{
		{"generic_succeeded.json", model.NotifyGeneric, Event{Source: "infra", Reason: SyncSucceeded, Revision: sha, Message: "revision 3f2a9c1 applied: 1 added, 2 changed, 0 removed services", Time: when}},
		{"generic_failed.json", model.NotifyGeneric, Event{Source: "infra", Reason: SyncFailed, Revision: sha, Message: "stacks/web/compose.yaml: services.web.image is required", Time: when}},
		{"slack_failed.json", model.NotifySlack, Event{Source: "infra", Reason: SyncFailed, Revision: sha, Message: "stacks/web/compose.yaml: services.web.image is required", Time: when}},
		{"slack_drift.json", model.NotifySlack, Event{Source: "infra", Reason: DriftDetected, Revision: sha, Message: "service web: replicas 3 in Git, 5 in the cluster", Time: when}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEndpoint(t)
			del, err := EventDelivery(model.NotifyTarget{Format: tc.format, URL: e.URL + "/hooks/T1/B2/secret"}, tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			newDispatcher(t, Options{}).Enqueue(del)
			r := e.next(t)
			if r.method != http.MethodPost || r.path != "/hooks/T1/B2/secret" || r.header.Get("Content-Type") != "application/json" {
				t.Errorf("got %s %s Content-Type %q, want POST /hooks/T1/B2/secret application/json", r.method, r.path, r.header.Get("Content-Type"))
			}
			checkGolden(t, tc.name, r.body)
		})
	}
}

func TestStatusBodies(t *testing.T) {
	for _, tc := range []struct {
		provider     model.CommitStatusProvider
		path, header string
		value        string
	}{
		{model.CommitStatusGitHub, "/repos/ops/stacks/statuses/" + sha, "Authorization", "Bearer tok"},
		{model.CommitStatusGitLab, "/projects/ops%2Fstacks/statuses/" + sha, "Private-Token", "tok"},
		{model.CommitStatusGitea, "/repos/ops/stacks/statuses/" + sha, "Authorization", "token tok"},
	} {
		t.Run(string(tc.provider), func(t *testing.T) {
			e := newEndpoint(t)
			cs := &model.CommitStatus{Provider: tc.provider, URL: e.URL}
			endpoint, err := cs.Endpoint("https://git.example.com/ops/stacks.git", sha)
			if err != nil {
				t.Fatal(err)
			}
			del, err := StatusDelivery(tc.provider, endpoint, "tok", Status{State: Failure, Context: "berth/infra",
				Description: "sync failed: stacks/web/compose.yaml: services.web.image is required " + strings.Repeat("and more ", 20)})
			if err != nil {
				t.Fatal(err)
			}
			newDispatcher(t, Options{}).Enqueue(del)
			r := e.next(t)
			if r.method != http.MethodPost || r.path != tc.path || r.header.Get(tc.header) != tc.value || r.header.Get("Content-Type") != "application/json" {
				t.Errorf("got %s %s %s: %q, Content-Type %q; want POST %s %s: %q, application/json",
					r.method, r.path, tc.header, r.header.Get(tc.header), r.header.Get("Content-Type"), tc.path, tc.header, tc.value)
			}
			checkGolden(t, "status_"+string(tc.provider)+".json", r.body)
		})
	}
}

func TestRetriesUntilAccepted(t *testing.T) {
	e := newEndpoint(t, http.StatusBadGateway, http.StatusServiceUnavailable)
	c := newCounts()
	clock := &instant{}
	d := newDispatcher(t, Options{After: clock.After, Count: c.count})
	del, err := EventDelivery(model.NotifyTarget{Format: model.NotifyGeneric, URL: e.URL}, Event{Source: "infra", Reason: SyncSucceeded, Time: when})
	if err != nil {
		t.Fatal(err)
	}
	d.Enqueue(del)
	if got := c.next(t); got != "generic sent" {
		t.Fatalf("counted %q, want generic sent", got)
	}
	if e.mu.Lock(); len(e.got) != 3 {
		t.Errorf("the endpoint received %d requests, want 3 (two failures, then the one it took)", len(e.got))
	}
	e.mu.Unlock()
}

func TestBackoffDoublesToItsCapThenDrops(t *testing.T) {
	e := newEndpoint(t, 500, 500, 500, 500, 500, 500)
	c := newCounts()
	clock := &instant{}
	d := newDispatcher(t, Options{After: clock.After, Count: c.count, MaxTries: 5, MinBackoff: time.Second, MaxBackoff: 5 * time.Second})
	d.Enqueue(Delivery{Kind: "generic", Queue: "q", URL: e.URL})
	if got := c.next(t); got != "generic failed" {
		t.Fatalf("counted %q, want generic failed", got)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second}
	clock.mu.Lock()
	defer clock.mu.Unlock()
	if !slices.Equal(clock.waits, want) {
		t.Errorf("waited %v between tries, want %v", clock.waits, want)
	}
}

func TestRefusedIsNotRetried(t *testing.T) {
	e := newEndpoint(t, http.StatusUnauthorized)
	c := newCounts()
	d := newDispatcher(t, Options{After: (&instant{}).After, Count: c.count})
	d.Enqueue(Delivery{Kind: "gitea", Queue: "q", URL: e.URL})
	if got := c.next(t); got != "gitea failed" {
		t.Fatalf("counted %q, want gitea failed", got)
	}
	if e.mu.Lock(); len(e.got) != 1 {
		t.Errorf("the endpoint received %d requests, want 1: a 401 is not retried", len(e.got))
	}
	e.mu.Unlock()
}

// blocked is an endpoint that holds every request until release is closed.
func blocked(t *testing.T) (srv *httptest.Server, entered chan struct{}, release chan struct{}) {
	entered, release = make(chan struct{}, 100), make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
		srv.Close()
	})
	return srv, entered, release
}

func TestSlowEndpointDelaysNoEnqueueAndOverflowDropsOldest(t *testing.T) {
	srv, entered, release := blocked(t)
	c := newCounts()
	d := newDispatcher(t, Options{QueueSize: 2, Count: c.count})
	d.Enqueue(Delivery{Kind: "generic", Queue: "q", URL: srv.URL + "/first"})
	<-entered
	// The endpoint holds the first delivery: these return at once, and the third
	// pushes the oldest waiting one out.
	for _, p := range []string{"/second", "/third", "/fourth"} {
		d.Enqueue(Delivery{Kind: "generic", Queue: "q", URL: srv.URL + p})
	}
	if got := c.next(t); got != "generic overflow" {
		t.Fatalf("counted %q, want generic overflow", got)
	}
	close(release)
	for range 3 {
		if got := c.next(t); got != "generic sent" {
			t.Errorf("counted %q, want generic sent", got)
		}
	}
}

func TestCloseEndsEveryGoroutine(t *testing.T) {
	srv, entered, _ := blocked(t)
	d := New(Options{})
	d.Enqueue(Delivery{Kind: "generic", Queue: "a", URL: srv.URL})
	d.Enqueue(Delivery{Kind: "generic", Queue: "b", URL: srv.URL})
	<-entered
	<-entered
	d.Close()
	d.Enqueue(Delivery{Kind: "generic", Queue: "c", URL: srv.URL})
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "notify.(*Dispatcher)") {
		t.Errorf("a dispatcher goroutine runs after Close:\n%s", stacks)
	}
}
