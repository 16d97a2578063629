package statetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// Fleet is a state written once: nodes node00, node01... (ready workers), and
// services big_s0000, big_s0001... of the stack big, each of 3 running tasks spread
// over the nodes, and the push source apps (Synced). It is the cluster the benchmarks
// at 1,000 services read.
func Fleet(tb testing.TB, nodes, services int) *state.Store {
	tb.Helper()
	st, err := state.New()
	if err != nil {
		tb.Fatal(err)
	}
	if err := st.Update(1, func(w *state.WriteTxn) error { return writeFleet(w, nodes, services) }); err != nil {
		tb.Fatal(err)
	}
	return st
}

func writeFleet(w *state.WriteTxn, nodes, services int) error {
	for i := range nodes {
		id := fmt.Sprintf("node%02d", i)
		if err := w.UpsertNode(&model.Node{ID: id, Hostname: id, Role: model.RoleWorker,
			Availability: model.AvailabilityActive, Status: model.NodeStatus{State: model.NodeReady}}); err != nil {
			return err
		}
	}
	three := uint64(3)
	for i := range services {
		svc := &model.Service{ID: fmt.Sprintf("svc%04d", i), Name: fmt.Sprintf("big_s%04d", i), Stack: "big", SpecVersion: 1,
			Spec: spec.Service{Name: fmt.Sprintf("s%04d", i), Image: "app:1",
				Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: &three, EndpointMode: "vip"}}}
		if err := w.UpsertService(svc); err != nil {
			return err
		}
		for slot := range uint64(3) {
			if err := w.UpsertTask(&model.Task{ID: fmt.Sprintf("t%04d-%d", i, slot), ServiceID: svc.ID, ServiceName: svc.Name, Slot: slot + 1,
				NodeID: fmt.Sprintf("node%02d", (i+int(slot))%nodes), SpecVersion: 1, DesiredState: model.TaskRunning,
				Status: model.TaskStatus{State: model.TaskRunning}}); err != nil {
				return err
			}
		}
	}
	return w.UpsertSource(&model.Source{Name: "apps", Kind: model.SourceGitPush, Status: model.SyncSynced})
}

// FixedStore is a control.Store over a state written once: writes fail.
type FixedStore struct{ St *state.Store }

// State implements control.Store.
func (s FixedStore) State() *state.Store { return s.St }

// StateIndex implements control.Store.
func (FixedStore) StateIndex() uint64 { return 1 }

// Apply implements control.Store.
func (FixedStore) Apply(context.Context, command.Type, any) (uint64, error) {
	return 0, errors.New("statetest.FixedStore: no raft")
}
