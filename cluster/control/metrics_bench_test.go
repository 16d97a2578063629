package control_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// fixedStore is a control.Store over a state written once.
type fixedStore struct{ st *state.Store }

func (s fixedStore) State() *state.Store { return s.st }
func (s fixedStore) StateIndex() uint64  { return 1 }
func (fixedStore) Apply(context.Context, command.Type, any) (uint64, error) {
	return 0, errors.New("fixedStore: no raft")
}

// BenchmarkMetricsScrape1000Services is one GET /metrics of a manager whose cluster runs
// 1,000 services of 3 tasks on 20 nodes, text format included (issue 20: <= 100 ms).
func BenchmarkMetricsScrape1000Services(b *testing.B) {
	st, err := state.New()
	if err != nil {
		b.Fatal(err)
	}
	err = st.Update(1, func(w *state.WriteTxn) error {
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
				if err := w.UpsertTask(&model.Task{ID: fmt.Sprintf("t%04d-%d", i, slot), ServiceID: svc.ID, Slot: slot + 1,
					NodeID: fmt.Sprintf("node%02d", (i+int(slot))%20), SpecVersion: 1, DesiredState: model.TaskRunning,
					Status: model.TaskStatus{State: model.TaskRunning}}); err != nil {
					return err
				}
			}
		}
		return w.UpsertSource(&model.Source{Name: "apps", Kind: model.SourceGitPush, Status: model.SyncSynced})
	})
	if err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(control.New(control.Config{Store: fixedStore{st}}).Collector())
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if rec.Code != 200 {
			b.Fatalf("scrape: %d %s", rec.Code, rec.Body)
		}
		if _, err := io.Copy(io.Discard, rec.Body); err != nil {
			b.Fatal(err)
		}
	}
}
