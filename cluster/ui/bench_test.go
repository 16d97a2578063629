package ui_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/store"
	"github.com/berthd/berth/cluster/ui"
	"github.com/berthd/berth/internal/statetest"
)

// oneManager is raft as a lone manager's control plane sees it.
type oneManager struct{ control.Raft }

func (oneManager) Servers() ([]store.Server, error) { return nil, nil }
func (oneManager) Leader() (string, string)         { return "", "" }

// controlCluster is a manager's control plane without the applier that previews
// sources.
type controlCluster struct{ *control.Control }

func (controlCluster) Plan(context.Context, *api.PlanRequest) (*api.PlanResponse, error) {
	return nil, errors.New("no applier in the benchmark")
}

// BenchmarkDashboard1000Services is one page load of the dashboard (handler and
// render, authenticated by a session cookie) on a manager whose cluster runs 1,000
// services of 3 tasks on 20 nodes in one stack (issue 21: <= 300 ms).
func BenchmarkDashboard1000Services(b *testing.B) {
	st := statetest.Fleet(b, 20, 1000)
	sessions := ui.NewSessions(nil)
	h, err := ui.New(controlCluster{control.New(control.Config{Store: statetest.FixedStore{St: st}, Raft: oneManager{}})},
		ui.Options{Sessions: sessions, ClusterID: func() string { return "c1" }})
	if err != nil {
		b.Fatal(err)
	}
	token, _, err := sessions.IssueToken()
	if err != nil {
		b.Fatal(err)
	}
	session, _, _ := sessions.Redeem(token)
	for _, p := range []struct{ name, path string }{{"overview", "/ui/"}, {"stack", "/ui/stacks/big"},
		{"service", "/ui/services/big_s0500"}, {"nodes", "/ui/nodes"}, {"node", "/ui/nodes/node07"}} {
		page := p.path
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, page, nil)
				req.AddCookie(&http.Cookie{Name: "__Host-berth-ui", Value: session})
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", page, rec.Code, rec.Body)
				}
			}
		})
	}
}
