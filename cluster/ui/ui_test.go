package ui_test

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/ui"
	"github.com/berthd/berth/spec"
)

// t0 is the tests' clock.
var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func sampleCluster() *fakeCluster {
	three, one := uint64(3), uint64(1)
	web := &api.ServiceStatus{Service: &model.Service{ID: "svc1", Name: "shop_web", Stack: "shop",
		Spec:         spec.Service{Name: "web", Image: "nginx:1.27", Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: &three}},
		UpdateStatus: model.UpdateStatus{State: model.UpdateCompleted}}, Running: 3, Desired: 3, UpToDate: 3}
	gpu := &api.ServiceStatus{Service: &model.Service{ID: "svc2", Name: "shop_gpu", Stack: "shop",
		Spec: spec.Service{Name: "gpu", Image: "trainer:2", Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: &one}}},
		Desired: 1, Pending: []api.PendingReason{{Reason: "no node matches node.labels.gpu==true", Tasks: 1}}}
	task := func(id, svc, name string, slot uint64, node string, state model.TaskState, err string, at time.Time) *api.TaskInfo {
		return &api.TaskInfo{Task: &model.Task{ID: id, ServiceID: svc, ServiceName: "shop_" + svc, Slot: slot, NodeID: node,
			DesiredState: model.TaskRunning, CreatedAt: at, Status: model.TaskStatus{State: state, Err: err, Timestamp: at}},
			Name: name, Stack: "shop", NodeHostname: map[string]string{"n1": "alpha"}[node]}
	}
	old := task("t0", "svc1", "shop_web.1", 1, "n1", model.TaskFailed, "exit code 137", t0.Add(-time.Hour))
	old.DesiredState = model.TaskShutdown
	return &fakeCluster{
		sources: []*api.SourceInfo{{Source: &model.Source{Name: "infra", Kind: model.SourceGitPull, URL: "https://git.example/infra.git",
			Branch: "main", LastAppliedRevision: "4f2a9c1e0b7d4f2a9c1e", LastFetchedRevision: "9999999999aaaaaaaaaa", LastAppliedAt: t0.Add(-90 * time.Second),
			Status: model.SyncOutOfSync, Message: "revision 999999999999 is newer",
			History: []model.SyncRecord{{Revision: "1111111111112222", Time: t0.Add(-time.Hour), Result: model.SyncApplied, Plan: model.PlanSummary{Added: 2}},
				{Revision: "4f2a9c1e0b7d4f2a9c1e", Time: t0.Add(-90 * time.Second), Result: model.SyncApplied, Plan: model.PlanSummary{Changed: 1}}}},
			Display: api.SourceOutOfSync, Stacks: []string{"shop"}}},
		stacks:   []*api.StackSummary{{Name: "shop", Services: 2, Source: "infra", Revision: "4f2a9c1e0b7d4f2a9c1e"}},
		services: []*api.ServiceStatus{web, gpu},
		tasks: []*api.TaskInfo{
			task("t1", "svc1", "shop_web.1", 1, "n1", model.TaskRunning, "", t0.Add(-time.Minute)), old,
			task("t2", "svc1", "shop_web.2", 2, "n1", model.TaskRunning, "", t0.Add(-time.Minute)),
			task("t3", "svc1", "shop_web.3", 3, "n1", model.TaskRunning, "", t0.Add(-time.Minute)),
			task("t4", "svc2", "shop_gpu.1", 1, "", model.TaskPending, "no node matches node.labels.gpu==true", t0.Add(-time.Minute)),
		},
		nodes: []*model.Node{{ID: "n1", Hostname: "alpha", Role: model.RoleManager, Availability: model.AvailabilityActive,
			Labels: map[string]string{"zone": "a"}, Addr: "198.18.0.1:4270", Status: model.NodeStatus{State: model.NodeReady},
			ManagerStatus: &model.ManagerStatus{Reachability: model.ReachabilityLeader}}},
		view: &api.NetworkView{Networks: []*model.Network{{ID: "net1", Name: "shop_default", Driver: "overlay", Subnet: "10.0.1.0/24"}},
			Endpoints: []api.NetworkEndpoint{{Network: "net1", TaskID: "t1", ServiceID: "svc1", NodeID: "n1", Addr: "10.0.1.3", Ready: true}},
			Services:  []api.NetworkService{{ID: "svc1", Name: "shop_web"}}},
		plan:   &api.PlanResponse{Revision: "9999999999aaaaaaaaaa", Placement: []*api.ServicePlacement{{Service: "shop_web", Unplaced: []api.UnplacedTasks{{Count: 1, Reason: "no node has 64 GiB free"}}}}},
		events: make(chan []*api.Event),
	}
}

type fixture struct {
	h        http.Handler
	sessions *ui.Sessions
	now      *time.Time
}

func newFixture(t *testing.T, c ui.Cluster, opts ...func(*ui.Options)) *fixture {
	t.Helper()
	now := t0
	clock := func() time.Time { return now }
	f := &fixture{sessions: ui.NewSessions(clock), now: &now}
	o := ui.Options{Sessions: f.sessions, ClusterID: func() string { return "c1" }, Now: clock,
		StatusCode: func(err error) int {
			if errors.Is(err, errNoSuch) {
				return http.StatusNotFound
			}
			return http.StatusInternalServerError
		}}
	for _, opt := range opts {
		opt(&o)
	}
	h, err := ui.New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	return f
}

// login redeems a fresh token and returns the session cookie.
func (f *fixture) login(t *testing.T) *http.Cookie {
	t.Helper()
	token, _, err := f.sessions.IssueToken()
	if err != nil {
		t.Fatal(err)
	}
	rec := f.get(nil, "/ui/login?token="+token)
	if rec.Code != http.StatusOK {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("login set %d cookies, want 1", len(cookies))
	}
	return cookies[0]
}

func (f *fixture) get(cookie *http.Cookie, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.TLS = &tls.ConnectionState{}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

func TestPages(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		status int
		want   []string
	}{
		{"overview lists sources with their status word", "/ui/", 200,
			[]string{"<caption>GitOps sources", `href="/ui/sources/infra"`, ">OutOfSync<", "4f2a9c1e0b7d", "1m30s ago", "revision 999999999999 is newer"}},
		{"overview lists stacks with replicas", "/ui/", 200, []string{`href="/ui/stacks/shop"`, ">3/4<"}},
		{"source shows revision, history newest first and the plan", "/ui/sources/infra", 200,
			[]string{"4f2a9c1e0b7d4f2a9c1e", "Newer revision", "9999999999aaaaaaaaaa", "What a sync would do", "no node has 64 GiB free",
				"berth diff --source infra", "4f2a9c1e0b7d</code></td><td>applied</td>"}},
		{"stack shows its services with replicas and pending reasons", "/ui/stacks/shop", 200,
			[]string{`href="/ui/services/shop_web"`, ">3/3<", ">0/1<", "1 pending: no node matches node.labels.gpu==true", "completed"}},
		{"service shows replicas, update state and tasks per slot", "/ui/services/shop_web", 200,
			[]string{">3/3<", "3 running of 3 desired", "completed", "shop_web.1", "shop_web.3", `href="/ui/nodes/alpha"`, "↳ shop_web.1", "exit code 137"}},
		{"service shows the reason of a pending task", "/ui/services/shop_gpu", 200,
			[]string{">0/1<", ">pending<", "no node matches node.labels.gpu==true"}},
		{"nodes list role, availability and labels", "/ui/nodes", 200,
			[]string{`href="/ui/nodes/alpha"`, "manager", "leader", "active", "zone=a", "<td>3</td>"}},
		{"node shows its tasks and which task runs where per network", "/ui/nodes/alpha", 200,
			[]string{"Tasks assigned to alpha", "Network <strong>shop_default</strong> (overlay, 10.0.1.0/24)", "10.0.1.3", "shop_web.1"}},
		{"a stack that does not exist is a 404 page", "/ui/stacks/nope", 404, []string{"no such stack: nope"}},
		{"a service that does not exist has the backend's status", "/ui/services/nope", 404, []string{"service nope: no such object"}},
		{"an unknown page is a 404 page", "/ui/frobs", 404, []string{"There is no dashboard page at /ui/frobs"}},
	}
	f := newFixture(t, sampleCluster())
	cookie := f.login(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.get(cookie, tt.path)
			body := rec.Body.String()
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d:\n%s", rec.Code, tt.status, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q:\n%s", w, body)
				}
			}
		})
	}
}

func TestDashboardIsReadOnly(t *testing.T) {
	f := newFixture(t, sampleCluster())
	cookie := f.login(t)
	for _, path := range []string{"/ui/", "/ui/services/shop_web", "/ui/nodes/alpha"} {
		req := httptest.NewRequest(http.MethodPost, path, nil)
		req.AddCookie(cookie)
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusMethodNotAllowed || !strings.Contains(rec.Body.String(), "read-only") {
			t.Errorf("POST %s: %d, want 405 saying the dashboard is read-only", path, rec.Code)
		}
	}
}

func TestPagesCarryNoScriptOfElsewhere(t *testing.T) {
	f := newFixture(t, sampleCluster())
	rec := f.get(f.login(t), "/ui/")
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	if body := rec.Body.String(); strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Errorf("the page links elsewhere:\n%s", body)
	}
}

func TestStaticAssets(t *testing.T) {
	f := newFixture(t, sampleCluster())
	for path, ctype := range map[string]string{"/ui/static/ui.css": "text/css", "/ui/static/ui.js": "text/javascript"} {
		rec := f.get(nil, path)
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), ctype) {
			t.Errorf("%s: %d %q", path, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
}
