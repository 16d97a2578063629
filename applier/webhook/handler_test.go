package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/applier/webhook"
	"github.com/berthd/berth/internal/syncbuf"
)

type target struct {
	secret string
	branch string
}

type syncCall struct {
	name, revision string
}

// fakeSources serves fixed targets and records the sync requests.
type fakeSources struct {
	targets   map[string]target
	lookupErr error
	syncErr   error

	mu    sync.Mutex
	calls []syncCall
}

func (f *fakeSources) WebhookTarget(_ context.Context, name string) ([]byte, string, error) {
	if f.lookupErr != nil {
		return nil, "", f.lookupErr
	}
	t, ok := f.targets[name]
	if !ok {
		return nil, "", fmt.Errorf("source %q: %w", name, webhook.ErrUnknownSource)
	}
	return []byte(t.secret), t.branch, nil
}

func (f *fakeSources) RequestSync(_ context.Context, name, revision string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, syncCall{name, revision})
	return f.syncErr
}

func (f *fakeSources) syncCalls() []syncCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// reply is the JSON body of an answer.
type reply struct {
	Status   string `json:"status"`
	Reason   string `json:"reason"`
	Revision string `json:"revision"`
	Error    string `json:"error"`
}

func TestHandler(t *testing.T) {
	const genericBody = `{"ref": "refs/heads/main", "after": "` + headRev + `"}`
	tooLarge := strings.Repeat("x", webhook.MaxBodySize+1)

	tests := []struct {
		name      string
		method    string
		path      string
		header    http.Header
		body      string
		chunked   bool // send the body without Content-Length
		sources   *fakeSources
		want      int
		wantReply reply
		// wantIn is a piece of the reason or error; the rest of the reply is compared exactly.
		wantIn    string
		wantCalls []syncCall
	}{
		{
			name:      "github push to the tracked branch",
			header:    githubHeaders("push", githubPush, testSecret),
			body:      githubPush,
			want:      http.StatusAccepted,
			wantReply: reply{Status: "sync requested", Revision: headRev},
			wantCalls: []syncCall{{"stacks", headRev}},
		},
		{
			name:      "gitlab push to the tracked branch",
			header:    gitlabHeaders("Push Hook", testSecret),
			body:      gitlabPush,
			want:      http.StatusAccepted,
			wantReply: reply{Status: "sync requested", Revision: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"},
			wantCalls: []syncCall{{"stacks", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}},
		},
		{
			name:      "gitea push to the tracked branch",
			header:    giteaHeaders("push", giteaPush, testSecret),
			body:      giteaPush,
			want:      http.StatusAccepted,
			wantReply: reply{Status: "sync requested", Revision: "bffeb74224043ba2feb48d137756c8a9331c449a"},
			wantCalls: []syncCall{{"stacks", "bffeb74224043ba2feb48d137756c8a9331c449a"}},
		},
		{
			name:      "forgejo push to the tracked branch",
			header:    forgejoHeaders("push", forgejoPush, testSecret),
			body:      forgejoPush,
			want:      http.StatusAccepted,
			wantReply: reply{Status: "sync requested", Revision: sha256Rev},
			wantCalls: []syncCall{{"stacks", sha256Rev}},
		},
		{
			name:      "generic push to the tracked branch",
			header:    genericHeaders(genericBody, testSecret),
			body:      genericBody,
			want:      http.StatusAccepted,
			wantReply: reply{Status: "sync requested", Revision: headRev},
			wantCalls: []syncCall{{"stacks", headRev}},
		},
		{
			name:      "generic without ref syncs what the source tracks",
			header:    genericHeaders("", testSecret),
			want:      http.StatusAccepted,
			wantReply: reply{Status: "sync requested"},
			wantCalls: []syncCall{{"stacks", ""}},
		},
		{
			name:      "source tracking the default branch syncs without revision",
			header:    githubHeaders("push", githubPushOtherBranch, testSecret),
			body:      githubPushOtherBranch,
			sources:   &fakeSources{targets: map[string]target{"stacks": {secret: testSecret}}},
			want:      http.StatusAccepted,
			wantReply: reply{Status: "sync requested"},
			wantCalls: []syncCall{{"stacks", ""}},
		},
		{
			name:      "push to another branch",
			header:    githubHeaders("push", githubPushOtherBranch, testSecret),
			body:      githubPushOtherBranch,
			want:      http.StatusAccepted,
			wantReply: reply{Status: "ignored"},
			wantIn:    `push to branch "feature/cache"; the source tracks branch "main"`,
		},
		{
			name:      "github tag push",
			header:    githubHeaders("push", githubTagPush, testSecret),
			body:      githubTagPush,
			want:      http.StatusAccepted,
			wantReply: reply{Status: "ignored"},
			wantIn:    "refs/tags/v1.4.0 is not a branch",
		},
		{
			name:      "gitlab tag push",
			header:    gitlabHeaders("Tag Push Hook", testSecret),
			body:      gitlabTagPush,
			want:      http.StatusAccepted,
			wantReply: reply{Status: "ignored"},
			wantIn:    "refs/tags/v1.0.0 is not a branch",
		},
		{
			name:      "tracked branch deleted",
			header:    gitlabHeaders("Push Hook", testSecret),
			body:      gitlabDelete,
			want:      http.StatusAccepted,
			wantReply: reply{Status: "ignored"},
			wantIn:    "deleted refs/heads/main",
		},
		{
			name:      "pull request event",
			header:    githubHeaders("pull_request", githubPullRequest, testSecret),
			body:      githubPullRequest,
			want:      http.StatusAccepted,
			wantReply: reply{Status: "ignored"},
			wantIn:    `github event "pull_request" is not a push`,
		},
		{
			name:      "ping",
			header:    githubHeaders("ping", githubPing, testSecret),
			body:      githubPing,
			want:      http.StatusOK,
			wantReply: reply{Status: "pong"},
		},
		{
			name:      "wrong secret",
			header:    githubHeaders("push", githubPush, "another-secret"),
			body:      githubPush,
			want:      http.StatusUnauthorized,
			wantReply: reply{Status: "error"},
			wantIn:    "X-Hub-Signature-256 does not match",
		},
		{
			name:      "tampered body",
			header:    githubHeaders("push", githubPushOtherBranch, testSecret),
			body:      githubPush,
			want:      http.StatusUnauthorized,
			wantReply: reply{Status: "error"},
			wantIn:    "X-Hub-Signature-256 does not match",
		},
		{
			name:      "gitlab token of a rotated secret",
			header:    gitlabHeaders("Push Hook", testSecret),
			body:      gitlabPush,
			sources:   &fakeSources{targets: map[string]target{"stacks": {secret: "rotated-secret", branch: "main"}}},
			want:      http.StatusUnauthorized,
			wantReply: reply{Status: "error"},
			wantIn:    "X-Gitlab-Token does not match",
		},
		{
			name:      "missing signature",
			header:    delHeader(githubHeaders("push", githubPush, testSecret), "X-Hub-Signature-256"),
			body:      githubPush,
			want:      http.StatusUnauthorized,
			wantReply: reply{Status: "error"},
			wantIn:    "no webhook signature",
		},
		{
			name:      "source without secret",
			header:    genericHeaders("", ""),
			sources:   &fakeSources{targets: map[string]target{"stacks": {branch: "main"}}},
			want:      http.StatusUnauthorized,
			wantReply: reply{Status: "error"},
			wantIn:    "no webhook secret",
		},
		{
			name:      "push payload not JSON",
			header:    githubHeaders("push", "{not json", testSecret),
			body:      "{not json",
			want:      http.StatusBadRequest,
			wantReply: reply{Status: "error"},
			wantIn:    "decode JSON body",
		},
		{
			name:      "body too large",
			header:    githubHeaders("push", tooLarge, testSecret),
			body:      tooLarge,
			want:      http.StatusRequestEntityTooLarge,
			wantReply: reply{Status: "error"},
			wantIn:    "larger than 1 MiB",
		},
		{
			name:      "body too large without Content-Length",
			header:    githubHeaders("push", tooLarge, testSecret),
			body:      tooLarge,
			chunked:   true,
			want:      http.StatusRequestEntityTooLarge,
			wantReply: reply{Status: "error"},
			wantIn:    "larger than 1 MiB",
		},
		{
			name:      "GET",
			method:    http.MethodGet,
			header:    githubHeaders("push", githubPush, testSecret),
			want:      http.StatusMethodNotAllowed,
			wantReply: reply{Status: "error"},
			wantIn:    "send POST",
		},
		{
			name:      "unknown source",
			path:      "/v1/hooks/nope",
			header:    githubHeaders("push", githubPush, testSecret),
			body:      githubPush,
			want:      http.StatusNotFound,
			wantReply: reply{Status: "error"},
			wantIn:    `no source "nope"`,
		},
		{
			name:      "empty name",
			path:      "/v1/hooks/",
			header:    githubHeaders("push", githubPush, testSecret),
			body:      githubPush,
			want:      http.StatusNotFound,
			wantReply: reply{Status: "error"},
			wantIn:    "POST /v1/hooks/NAME",
		},
		{
			name:      "name with a slash",
			path:      "/v1/hooks/stacks/extra",
			header:    githubHeaders("push", githubPush, testSecret),
			body:      githubPush,
			want:      http.StatusNotFound,
			wantReply: reply{Status: "error"},
			wantIn:    "POST /v1/hooks/NAME",
		},
		{
			name:      "name with an escaped slash",
			path:      "/v1/hooks/stacks%2Fextra",
			header:    githubHeaders("push", githubPush, testSecret),
			body:      githubPush,
			want:      http.StatusNotFound,
			wantReply: reply{Status: "error"},
			wantIn:    "POST /v1/hooks/NAME",
		},
		{
			name:      "source lookup fails",
			header:    githubHeaders("push", githubPush, testSecret),
			body:      githubPush,
			sources:   &fakeSources{lookupErr: errors.New("raft: no leader at 10.0.0.7")},
			want:      http.StatusServiceUnavailable,
			wantReply: reply{Status: "error", Error: "cannot look up the source now; retry later"},
		},
		{
			name:      "sync request fails",
			header:    githubHeaders("push", githubPush, testSecret),
			body:      githubPush,
			sources:   &fakeSources{targets: map[string]target{"stacks": {testSecret, "main"}}, syncErr: errors.New("no leader")},
			want:      http.StatusServiceUnavailable,
			wantReply: reply{Status: "error"},
			wantIn:    `request sync of source "stacks": no leader`,
			wantCalls: []syncCall{{"stacks", headRev}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.sources
			if src == nil {
				src = &fakeSources{targets: map[string]target{"stacks": {testSecret, "main"}}}
			}
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			h := webhook.NewHandler(src, webhook.WithLogger(logger))

			method, path := tt.method, tt.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/v1/hooks/stacks"
			}
			req := httptest.NewRequest(method, path, strings.NewReader(tt.body))
			for k, v := range tt.header {
				req.Header[k] = v
			}
			if tt.chunked {
				req.ContentLength = -1
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != tt.want {
				t.Errorf("status = %d; want %d (body %s)", rec.Code, tt.want, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q; want application/json", ct)
			}
			var got reply
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("decode reply %q: %v", rec.Body, err)
			}
			if tt.wantIn != "" {
				text := &got.Reason
				if got.Status == "error" {
					text = &got.Error
				}
				if !strings.Contains(*text, tt.wantIn) {
					t.Errorf("reply %+v; want %q in it", got, tt.wantIn)
				}
				*text = ""
			}
			if got != tt.wantReply {
				t.Errorf("reply = %+v; want %+v", got, tt.wantReply)
			}
			if calls := src.syncCalls(); !slices.Equal(calls, tt.wantCalls) {
				t.Errorf("RequestSync calls = %v; want %v", calls, tt.wantCalls)
			}
			if tt.want == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != http.MethodPost {
				t.Errorf("Allow = %q; want POST", rec.Header().Get("Allow"))
			}
			assertNoSecrets(t, rec.Body.String(), tt.header)
			assertNoSecrets(t, logs.String(), tt.header)
		})
	}
}

// TestHandlerMounted checks the handler behind the ServeMux pattern the API server uses.
func TestHandlerMounted(t *testing.T) {
	src := &fakeSources{targets: map[string]target{"stacks": {testSecret, "main"}}}
	mux := http.NewServeMux()
	mux.Handle(webhook.PathPrefix, webhook.NewHandler(src))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/v1/hooks/stacks", strings.NewReader(githubPush))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = githubHeaders("push", githubPush, testSecret)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("status = %d; want %d", resp.StatusCode, http.StatusAccepted)
	}
	if want := []syncCall{{"stacks", headRev}}; !slices.Equal(src.syncCalls(), want) {
		t.Errorf("RequestSync calls = %v; want %v", src.syncCalls(), want)
	}
}

// post sends one request to h and decodes the answer.
func post(t *testing.T, h http.Handler, header http.Header, body string) (int, reply) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/hooks/stacks", strings.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var got reply
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Errorf("decode reply %q: %v", rec.Body, err)
	}
	return rec.Code, got
}

// TestHandlerAnswersReplaysWithoutSync sends the same signed delivery 300 times at once:
// one sync request, 299 answers that say it is a replay.
func TestHandlerAnswersReplaysWithoutSync(t *testing.T) {
	const replays = 300
	tests := []struct {
		name   string
		header http.Header
		body   string
	}{
		{"github", githubHeaders("push", githubPush, testSecret), githubPush},
		{"gitlab", gitlabHeaders("Push Hook", testSecret), gitlabPush},
		{"gitea", giteaHeaders("push", giteaPush, testSecret), giteaPush},
		{"forgejo", forgejoHeaders("push", forgejoPush, testSecret), forgejoPush},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeSources{targets: map[string]target{"stacks": {testSecret, "main"}}}
			h := webhook.NewHandler(src)
			codes := make(chan int, replays)
			var wg sync.WaitGroup
			for range replays {
				wg.Go(func() {
					code, got := post(t, h, tt.header, tt.body)
					if code == http.StatusOK && (got.Status != "replay" || !strings.Contains(got.Reason, "a replay requests no sync")) {
						t.Errorf("replay answered %+v; want status replay and the reason", got)
					}
					codes <- code
				})
			}
			wg.Wait()
			close(codes)
			count := map[int]int{}
			for c := range codes {
				count[c]++
			}
			if want := map[int]int{http.StatusAccepted: 1, http.StatusOK: replays - 1}; !maps.Equal(count, want) {
				t.Errorf("answers by status = %v; want %v", count, want)
			}
			if n := len(src.syncCalls()); n != 1 {
				t.Errorf("%d sync requests for one delivery sent %d times; want 1", n, replays)
			}
		})
	}
}

// TestHandlerRemembersOnlyDeliveriesItActedOn: a copy with a bad signature and a delivery
// whose sync request failed do not make the genuine delivery, or its retry, a replay;
// another delivery id is not a replay.
func TestHandlerRemembersOnlyDeliveriesItActedOn(t *testing.T) {
	src := &fakeSources{targets: map[string]target{"stacks": {testSecret, "main"}}}
	h := webhook.NewHandler(src)
	steps := []struct {
		name    string
		header  http.Header
		syncErr error
		want    int
		status  string
	}{
		{"unsigned copy", githubHeaders("push", githubPush, "guessed-secret"), nil, http.StatusUnauthorized, "error"},
		{"genuine delivery, no leader", githubHeaders("push", githubPush, testSecret), errors.New("no leader"), http.StatusServiceUnavailable, "error"},
		{"sender retries", githubHeaders("push", githubPush, testSecret), nil, http.StatusAccepted, "sync requested"},
		{"replay", githubHeaders("push", githubPush, testSecret), nil, http.StatusOK, "replay"},
		{"another delivery", withHeader(githubHeaders("push", githubPush, testSecret), "X-GitHub-Delivery", "another-id"), nil, http.StatusAccepted, "sync requested"},
		{"the same id for another sender", withHeader(genericHeaders("", testSecret), "X-Berth-Delivery", deliveries[webhook.GitHub]), nil, http.StatusAccepted, "sync requested"},
	}
	for _, s := range steps {
		src.mu.Lock()
		src.syncErr = s.syncErr
		src.mu.Unlock()
		code, got := post(t, h, s.header, githubPushBodyFor(s.header))
		if code != s.want || got.Status != s.status {
			t.Errorf("%s: %d %+v; want %d %s", s.name, code, got, s.want, s.status)
		}
	}
	if n := len(src.syncCalls()); n != 4 {
		t.Errorf("%d sync requests; want 4 (the failed one, the retry and the two other deliveries)", n)
	}
}

// githubPushBodyFor is the body the headers were signed for.
func githubPushBodyFor(h http.Header) string {
	if h.Get("X-Berth-Signature-256") != "" {
		return ""
	}
	return githubPush
}

func withHeader(h http.Header, key, value string) http.Header {
	h.Set(key, value)
	return h
}

// TestHandlerCoalescesSyncRequests sends 20 pushes while the sync request of a first one
// is being made: they share one queued request, made after the first returns.
func TestHandlerCoalescesSyncRequests(t *testing.T) {
	const waiting = 20
	release := make(chan struct{})
	started := make(chan struct{}, waiting+1)
	src := &blockingSources{fakeSources: fakeSources{targets: map[string]target{"stacks": {testSecret, "main"}}},
		release: release, started: started}
	var logs syncbuf.Buffer
	h := webhook.NewHandler(src, webhook.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))

	var wg sync.WaitGroup
	replies := make(chan reply, waiting+1)
	send := func(id string) {
		wg.Go(func() {
			code, got := post(t, h, withHeader(githubHeaders("push", githubPush, testSecret), "X-GitHub-Delivery", id), githubPush)
			if code != http.StatusAccepted {
				t.Errorf("delivery %s: %d %+v; want 202", id, code, got)
			}
			replies <- got
		})
	}
	send("first")
	<-started
	for i := range waiting {
		send(fmt.Sprintf("push-%d", i))
	}
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(logs.String(), "joins the one queued") < waiting {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests joined the queued one; %d sync requests made",
				strings.Count(logs.String(), "joins the one queued"), waiting, len(src.syncCalls()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(replies)
	joined := 0
	for r := range replies {
		if strings.Contains(r.Reason, "joined the sync request queued") {
			joined++
		}
	}
	if n := len(src.syncCalls()); n != 2 || joined != waiting {
		t.Errorf("%d sync requests, %d answers say they joined; want 2 requests (the first and one queued), %d joined", n, joined, waiting)
	}
}

// blockingSources holds every sync request until release is closed.
type blockingSources struct {
	fakeSources
	release <-chan struct{}
	started chan<- struct{}
}

func (b *blockingSources) RequestSync(ctx context.Context, name, revision string) error {
	err := b.fakeSources.RequestSync(ctx, name, revision)
	b.started <- struct{}{}
	<-b.release
	return err
}
