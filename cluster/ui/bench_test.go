package ui_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store"
	"github.com/berthd/berth/cluster/ui"
	"github.com/berthd/berth/spec"
)

// fixedStore is a control.Store over a state written once.
type fixedStore struct{ st *state.Store }

func (s fixedStore) State() *state.Store { return s.st }
func (s fixedStore) StateIndex() uint64  { return 1 }
func (fixedStore) Apply(context.Context, command.Type, any) (uint64, error) {
	return 0, errors.New("fixedStore: no raft")
}

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
	st, err := state.New()
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Update(1, write1000Services); err != nil {
		b.Fatal(err)
	}
	sessions := ui.NewSessions(nil)
	h, err := ui.New(controlCluster{control.New(control.Config{Store: fixedStore{st}, Raft: oneManager{}})},
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

func write1000Services(w *state.WriteTxn) error {
	for i := range 20 {
		id := fmt.Sprintf("node%02d", i)
		if err := w.UpsertNode(&model.Node{ID: id, Hostname: id, Role: model.RoleWorker,
			Availability: model.AvailabilityActive, Status: model.NodeStatus{State: model.NodeReady}}); err != nil {
			return err
		}
	}
	three := uint64(3)
	for i := range 1000 {
		svc := &model.Service{ID: fmt.Sprintf("svc%04d", i), Name: fmt.Sprintf("big_s%04d", i), Stack: "big", SpecVersion: 1,
			Spec: spec.Service{Name: fmt.Sprintf("s%04d", i), Image: "app:1",
				Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: &three, EndpointMode: "vip"}}}
		if err := w.UpsertService(svc); err != nil {
			return err
		}
		for slot := range uint64(3) {
			if err := w.UpsertTask(&model.Task{ID: fmt.Sprintf("t%04d-%d", i, slot), ServiceID: svc.ID, ServiceName: svc.Name, Slot: slot + 1,
				NodeID: fmt.Sprintf("node%02d", (i+int(slot))%20), SpecVersion: 1, DesiredState: model.TaskRunning,
				Status: model.TaskStatus{State: model.TaskRunning}}); err != nil {
				return err
			}
		}
	}
	return w.UpsertSource(&model.Source{Name: "apps", Kind: model.SourceGitPush, Status: model.SyncSynced})
}
