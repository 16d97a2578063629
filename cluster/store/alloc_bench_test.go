package store

import (
	"fmt"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/spec"
)

// benchFSM applies entries to a fresh FSM; it uses only what every build of the
// package has, so that the benchmarks below run on older trees for a baseline.
type benchFSM struct {
	b     *testing.B
	f     *fsm
	index uint64
}

func newBenchFSM(b *testing.B) *benchFSM {
	f, err := newFSM(slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	return &benchFSM{b: b, f: f}
}

func (h *benchFSM) encode(ct command.Type, body any) []byte {
	data, err := command.Encode(ct, body)
	if err != nil {
		h.b.Fatal(err)
	}
	return data
}

func (h *benchFSM) apply(data []byte) {
	h.index++
	if r := h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: data}); r != nil {
		h.b.Fatal(r)
	}
}

// benchStack is webStack on a /16, with a port published in ingress mode.
func benchStack(name string) *spec.Stack {
	st := webStack("nginx:1", 1)
	st.Networks["default"].Subnets = []string{"10.40.0.0/16"}
	st.Services["api"].Ports = []spec.Port{{Target: 80, Published: 8080, Protocol: "tcp", Mode: spec.PortModeIngress}}
	if name != "api" {
		st.Services[name], st.Services["api"] = st.Services["api"], nil
		delete(st.Services, "api")
		st.Services[name].Name = name
	}
	return st
}

// attachedTasks is a plan of n tasks of svc, each with an address on net: the i-th
// batch's addresses follow the previous batch's.
func attachedTasks(svc *model.Service, net *model.Network, batch, n int) *command.PlanApply {
	base := netip.MustParseAddr("10.40.0.2").As4()
	p := &orchestrator.Plan{ServiceID: svc.ID, SpecVersion: svc.SpecVersion}
	for j := range n {
		k := batch*n + j
		addr := netip.AddrFrom4([4]byte{base[0], base[1], byte(k >> 8 % 256), byte(2 + k%250)})
		p.Create = append(p.Create, &model.Task{ID: fmt.Sprintf("t%07d", k), ServiceID: svc.ID, ServiceName: svc.Name,
			Slot: uint64(k + 1), NodeID: "n1", SpecVersion: svc.SpecVersion, DesiredState: model.TaskRunning,
			Status:   model.TaskStatus{State: model.TaskAssigned, Timestamp: now},
			Networks: []model.Attachment{{Network: net.ID, Addr: netip.PrefixFrom(addr, 16).String(), MAC: "02:42:0a:28:00:02"}}})
	}
	return &command.PlanApply{Plans: []*orchestrator.Plan{p}}
}

// setupAttached deploys benchStack and returns its service and network.
func setupAttached(h *benchFSM) (*model.Service, *model.Network) {
	h.apply(h.encode(command.CmdNodeUpsert, node("n1")))
	h.apply(h.encode(command.CmdStackDeploy, deploy(benchStack("api"), "pw", "c", false)))
	tx := h.f.State().ReadTxn()
	svc, err := tx.ServiceByName(nil, "web_api")
	if err != nil {
		h.b.Fatal(err)
	}
	net, err := tx.NetworkByName(nil, "web_default")
	if err != nil {
		h.b.Fatal(err)
	}
	return svc, net
}

// BenchmarkPlanApply1000Attached: the FSM applies an entry that creates 1,000 tasks
// holding an address each (what the leader commits while it places a service).
func BenchmarkPlanApply1000Attached(b *testing.B) {
	h := newBenchFSM(b)
	svc, net := setupAttached(h)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		data := h.encode(command.CmdPlanApply, attachedTasks(svc, net, i, 1000))
		b.StartTimer()
		h.apply(data)
	}
}

// setup100k deploys benchStack and gives its service 100,000 tasks with addresses.
func setup100k(h *benchFSM) {
	svc, net := setupAttached(h)
	for i := range 100 {
		h.apply(h.encode(command.CmdPlanApply, attachedTasks(svc, net, i, 1000)))
	}
}

// BenchmarkStackDeployNewServiceOver100kTasks: a stack write that adds a service (so
// a VIP to choose) to a state holding 100,000 tasks with addresses.
func BenchmarkStackDeployNewServiceOver100kTasks(b *testing.B) {
	h := newBenchFSM(b)
	setup100k(h)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		st := benchStack("api")
		st.Name = fmt.Sprintf("s%d", i)
		st.Networks["default"] = &spec.Network{Name: "web_default", External: true}
		st.Secrets["pw"].Name, st.Configs["conf"].Name = st.Name+"_pw", st.Name+"_conf"
		data := h.encode(command.CmdStackDeploy, deploy(st, "pw", "c", false))
		b.StartTimer()
		h.apply(data)
	}
}

// BenchmarkNodeJoinOver100kTasks: a node joins a state of 100,000 tasks holding
// addresses, after a stack published a port in ingress mode (so, on this branch, the
// node gets an ingress endpoint).
func BenchmarkNodeJoinOver100kTasks(b *testing.B) {
	h := newBenchFSM(b)
	setup100k(h)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		data := h.encode(command.CmdNodeUpsert, node(fmt.Sprintf("join%05d", i)))
		b.StartTimer()
		h.apply(data)
	}
}
