package control

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// benchState is a cluster of nodes nodes with one task each, spread over nets
// networks with one service each: what bench/netview deploys.
func benchState(b *testing.B, nodes, nets int) *state.Store {
	st, err := state.New()
	if err != nil {
		b.Fatal(err)
	}
	err = st.Update(1, func(w *state.WriteTxn) error {
		for k := range nets {
			n := &model.Network{ID: fmt.Sprintf("net%021d", k), Name: fmt.Sprintf("nv_n%d", k), Stack: "nv", Driver: "overlay",
				VNI: uint32(4097 + k), Subnet: fmt.Sprintf("10.%d.%d.0/20", 100+k/16, (k%16)*16), Gateway: "10.100.0.1"}
			if err := w.UpsertNetwork(n); err != nil {
				return err
			}
			svc := &model.Service{ID: fmt.Sprintf("svc%021d", k), Name: fmt.Sprintf("nv_s%d", k), Stack: "nv",
				Spec: spec.Service{Name: fmt.Sprintf("s%d", k), Deploy: spec.Deploy{EndpointMode: "vip"}}}
			if err := w.UpsertService(svc); err != nil {
				return err
			}
		}
		var tasks []*model.Task
		for i := range nodes {
			id := fmt.Sprintf("node%020d", i)
			if err := w.UpsertNode(&model.Node{ID: id, Hostname: id, Role: model.RoleWorker, Availability: model.AvailabilityActive,
				Addr: fmt.Sprintf("198.18.%d.%d:4270", i/250, i%250+1), Status: model.NodeStatus{State: model.NodeReady}}); err != nil {
				return err
			}
			k := i % nets
			tasks = append(tasks, &model.Task{ID: fmt.Sprintf("task%020d", i), ServiceID: fmt.Sprintf("svc%021d", k), NodeID: id,
				DesiredState: model.TaskRunning, Status: model.TaskStatus{State: model.TaskRunning},
				Networks: []model.Attachment{{Network: fmt.Sprintf("net%021d", k), Addr: fmt.Sprintf("10.%d.%d.%d/20", 100+k/16, (k%16)*16+i/nets/250, i/nets%250+2)}}})
		}
		return w.UpsertTasks(tasks)
	})
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// BenchmarkNetIndexBuild is the cost of one state change to the network watch at
// 5,000 nodes: indexing every network once.
func BenchmarkNetIndexBuild(b *testing.B) {
	st := benchState(b, 5000, 10)
	for b.Loop() {
		if _, err := buildNetIndex(st.ReadTxn(), st, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNetViewAnswer is the cost of one node's answer (a network of 500
// endpoints): its view assembled from the index with its encoding spliced from the
// networks' (what the handler sends), against encoding the assembled view per
// answer.
func BenchmarkNetViewAnswer(b *testing.B) {
	st := benchState(b, 5000, 10)
	ni, err := buildNetIndex(st.ReadTxn(), st, 1)
	if err != nil {
		b.Fatal(err)
	}
	id := fmt.Sprintf("node%020d", 7)
	b.Run("spliced", func(b *testing.B) {
		var size int
		for b.Loop() {
			size = len(ni.view(id).Encoded)
		}
		b.ReportMetric(float64(size), "bytes/answer")
	})
	b.Run("encoded-per-answer", func(b *testing.B) {
		for b.Loop() {
			v := ni.view(id)
			v.Encoded = nil
			if _, err := json.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
