// Package statetest has the fixtures of the tests that plan and preview against a
// state store without raft: the applier's and the control plane's.
package statetest

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// PreviewCluster is a state store with three ready nodes: two linux, one windows.
func PreviewCluster(t *testing.T) *state.Store {
	t.Helper()
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []struct{ id, os string }{{"n1", "linux"}, {"n2", "linux"}, {"n3", "windows"}} {
		row := &model.Node{ID: n.id, Hostname: "host-" + n.id, Role: model.RoleWorker, Availability: model.AvailabilityActive,
			Labels: map[string]string{"os": n.os}, Status: model.NodeStatus{State: model.NodeReady}}
		if err := command.Simulate(st, command.CmdNodeUpsert, row); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// Counter makes the IDs id001, id002...
func Counter() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("id%03d", n) }
}

// Dump is v as JSON, for a test's message.
func Dump(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
