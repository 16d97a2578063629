package ui_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ui"
)

// openStream opens GET /ui/events on srv with the session cookie; the stream closes
// when the test ends.
func openStream(t *testing.T, srv *httptest.Server, c *http.Cookie) *http.Response {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/ui/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(c)
	resp, err := srv.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	return resp
}

// readMessage reads the stream up to its next message with data, and returns the data.
func readMessage(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read the stream: %v", err)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			return strings.TrimSpace(data)
		}
	}
}

func TestEventsStreamTheManagersEvents(t *testing.T) {
	c := sampleCluster()
	f := newFixture(t, c)
	srv := httptest.NewServer(f.h)
	t.Cleanup(srv.Close)
	resp := openStream(t, srv, f.login(t))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %q, want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c.events <- []*api.Event{{Index: 2, Type: "service", Action: "update", ID: "svc1", Name: "shop_web",
		Attributes: map[string]string{"secret": "not for the page"}}}
	got := readMessage(t, bufio.NewReader(resp.Body))
	if want := `{"type":"service","action":"update","name":"shop_web"}`; got != want {
		t.Errorf("message %s, want %s", got, want)
	}
}

func TestEventsStreamsAreBounded(t *testing.T) {
	f := newFixture(t, sampleCluster(), func(o *ui.Options) { o.MaxStreams = 1 })
	srv := httptest.NewServer(f.h)
	t.Cleanup(srv.Close)
	cookie := f.login(t)
	if resp := openStream(t, srv, cookie); resp.StatusCode != http.StatusOK {
		t.Fatalf("first stream: %d", resp.StatusCode)
	}
	if resp := openStream(t, srv, cookie); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second stream: %d, want 503", resp.StatusCode)
	}
}
