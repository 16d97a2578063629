package store

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/netstack/ipam"
	"github.com/berthd/berth/spec"
)

// meshStack is webStack on a /29 (gateway .1, hosts .2 to .6) with a port
// published in ingress mode.
func meshStack(image string) *spec.Stack {
	st := webStack(image, 1)
	st.Networks["default"].Subnets = []string{"10.30.0.0/29"}
	st.Services["api"].Ports = []spec.Port{{Target: 80, Published: 8080, Protocol: "tcp", Mode: spec.PortModeIngress}}
	return st
}

// found returns what a state lookup found, failing the test when it found nothing.
func found[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func (h *fsmHarness) service(name string) *model.Service {
	return found[*model.Service](h.t)(h.tx().ServiceByName(nil, name))
}

func (h *fsmHarness) network(name string) *model.Network {
	return found[*model.Network](h.t)(h.tx().NetworkByName(nil, name))
}

func (h *fsmHarness) node(id string) *model.Node {
	return found[*model.Node](h.t)(h.tx().Node(nil, id))
}

// vips returns a service's VIPs by network name.
func (h *fsmHarness) vips(name string) map[string]string {
	h.t.Helper()
	out := map[string]string{}
	for _, v := range h.service(name).Endpoint.VIPs {
		n, err := h.tx().Network(nil, v.Network)
		if err != nil {
			h.t.Fatalf("VIP %s on network %s: %v", v.Addr, v.Network, err)
		}
		out[n.Name] = v.Addr
	}
	return out
}

// addressTasks creates tasks of service svc holding the given addresses on network
// net, the first in state st, the others running.
func (h *fsmHarness) addressTasks(svc *model.Service, net *model.Network, st model.TaskState, addrs ...string) {
	h.t.Helper()
	var tasks []*model.Task
	for i, a := range addrs {
		s := model.TaskRunning
		if i == 0 {
			s = st
		}
		tasks = append(tasks, &model.Task{ID: "task-" + strings.NewReplacer(".", "-", "/", "-").Replace(a), ServiceID: svc.ID,
			ServiceName: svc.Name, Slot: uint64(10 + i), NodeID: "n1", SpecVersion: svc.SpecVersion, DesiredState: model.TaskRunning,
			Status: model.TaskStatus{State: s, Timestamp: now}, CreatedAt: now,
			Networks: []model.Attachment{{Network: net.ID, Addr: a}}})
	}
	h.must(command.CmdPlanApply, &command.PlanApply{Plans: []*orchestrator.Plan{{ServiceID: svc.ID, SpecVersion: svc.SpecVersion, Create: tasks}}})
}

// TestVIPsAvoidTasksGatewayAndEndpoints: VIPs come from the top of the subnet and
// skip the addresses tasks, nodes and other VIPs hold; a terminal task holds none.
func TestVIPsAvoidTasksGatewayAndEndpoints(t *testing.T) {
	h := newFSMHarness(t)
	h.must(command.CmdNodeUpsert, node("n1"))
	h.must(command.CmdNodeUpsert, node("n2"))
	h.must(command.CmdStackDeploy, deploy(webStack("nginx:1", 1), "pw", "c", false))
	// A service on the stack's network, its tasks holding .6 (running) and .5
	// (failed): the next VIP skips .6 and takes .5.
	st := meshStack("nginx:1")
	st.Services["api"].Ports = nil
	st.Services["api"].Deploy.EndpointMode = "dnsrr"
	h.must(command.CmdStackDeploy, deploy(st, "pw", "c", false))
	if v := h.service("web_api").Endpoint.VIPs; len(v) != 0 {
		t.Fatalf("a dnsrr service has VIPs %v", v)
	}
	h.addressTasks(h.service("web_api"), h.network("web_default"), model.TaskFailed, "10.30.0.5/29", "10.30.0.6/29")

	h.must(command.CmdStackDeploy, deploy(meshStack("nginx:1"), "pw", "c", false))
	ingress := h.network(command.IngressName)
	if !ingress.Ingress || ingress.Driver != "overlay" || ingress.VNI == 0 || ingress.Subnet != ipam.IngressSubnet.String() ||
		ingress.Gateway != "10.255.0.1" || ingress.Stack != "" || len(ingress.ID) != model.IDLength {
		t.Fatalf("ingress network %+v", ingress)
	}
	if n := h.network("web_default"); ingress.VNI == n.VNI {
		t.Errorf("ingress and web_default share VNI %d", n.VNI)
	}
	// The nodes got their endpoints when the ingress network was made, in the
	// order of their IDs, before the service's VIP there.
	for id, want := range map[string]string{"n1": "10.255.63.254/18", "n2": "10.255.63.253/18"} {
		nd := h.node(id)
		if len(nd.Networks) != 1 || nd.Networks[0].Network != ingress.ID || nd.Networks[0].Addr != want || nd.Networks[0].MAC == "" {
			t.Errorf("node %s endpoints %+v, want %s on ingress", id, nd.Networks, want)
		}
	}
	want := map[string]string{"web_default": "10.30.0.5/29", command.IngressName: "10.255.63.252/18"}
	if got := h.vips("web_api"); !reflect.DeepEqual(got, want) {
		t.Errorf("VIPs %v, want %v", got, want)
	}
	if svc := h.service("web_api"); svc.Endpoint.VIPs[1].Network != ingress.ID {
		t.Errorf("VIPs %v: want the ingress network's last", svc.Endpoint.VIPs)
	}

	// A second service on the same network gets the next address down; the
	// gateway is never given.
	two := meshStack("nginx:1")
	two.Services["worker"] = &spec.Service{Name: "worker", Image: "busybox:1", Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: ptr(uint64(1))},
		Networks: []spec.ServiceNetwork{{Name: "default"}}}
	for _, more := range []string{"w2", "w3", "w4"} {
		two.Services[more] = &spec.Service{Name: more, Image: "busybox:1", Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: ptr(uint64(1))},
			Networks: []spec.ServiceNetwork{{Name: "default"}}}
	}
	err := h.apply(command.CmdStackDeploy, deploy(two, "pw", "c", false))
	if !errors.Is(err, state.ErrConflict) || !strings.Contains(err.Error(), "10.30.0.0/29") {
		t.Fatalf("four more VIPs on a /29 with .1 the gateway, .5 a VIP and .6 a task: %v, want the subnet full", err)
	}
	delete(two.Services, "w4")
	h.must(command.CmdStackDeploy, deploy(two, "pw", "c", false))
	var got []string
	for _, name := range []string{"web_w2", "web_w3", "web_worker"} {
		got = append(got, h.vips(name)["web_default"])
	}
	if !slices.Equal(got, []string{"10.30.0.4/29", "10.30.0.3/29", "10.30.0.2/29"}) {
		t.Errorf("VIPs of w2, w3 and worker: %v, want .4, .3, .2 (services in the order of their names)", got)
	}
}

// TestVIPsFollowTheService: a VIP is kept across updates while the service stays on
// the network, dropped when it leaves the network, switches to dnsrr or goes away,
// and comes back from the top of the subnet.
func TestVIPsFollowTheService(t *testing.T) {
	h := newFSMHarness(t)
	h.must(command.CmdStackDeploy, deploy(meshStack("nginx:1"), "pw", "c", false))
	first := h.vips("web_api")
	if first["web_default"] != "10.30.0.6/29" {
		t.Fatalf("VIPs %v, want .6 on web_default", first)
	}
	h.must(command.CmdStackDeploy, deploy(meshStack("nginx:2"), "pw", "c", false))
	if got := h.vips("web_api"); !reflect.DeepEqual(got, first) || h.service("web_api").SpecVersion != 2 {
		t.Errorf("after an image update: VIPs %v, want %v kept", got, first)
	}

	// A second network: the first VIP stays, the new network gets its own.
	st := meshStack("nginx:2")
	st.Networks["back"] = &spec.Network{Name: "web_back", Driver: "overlay"}
	st.Services["api"].Networks = append(st.Services["api"].Networks, spec.ServiceNetwork{Name: "back"})
	h.must(command.CmdStackDeploy, deploy(st, "pw", "c", false))
	got := h.vips("web_api")
	if got["web_default"] != first["web_default"] || got[command.IngressName] != first[command.IngressName] || got["web_back"] != "10.0.0.254/24" {
		t.Errorf("on a second network: %v", got)
	}

	// It leaves web_default and stops publishing: those VIPs go.
	st.Services["api"].Networks = st.Services["api"].Networks[1:]
	st.Services["api"].Ports = nil
	h.must(command.CmdStackDeploy, deploy(st, "pw", "c", false))
	if got := h.vips("web_api"); !reflect.DeepEqual(got, map[string]string{"web_back": "10.0.0.254/24"}) {
		t.Errorf("after leaving web_default and the mesh: %v", got)
	}

	// dnsrr: no VIP at all; back to vip: the highest free address again.
	st.Services["api"].Deploy.EndpointMode = "dnsrr"
	h.must(command.CmdStackDeploy, deploy(st, "pw", "c", false))
	if v := h.service("web_api").Endpoint.VIPs; len(v) != 0 {
		t.Errorf("dnsrr service keeps VIPs %v", v)
	}
	st.Services["api"].Deploy.EndpointMode = ""
	h.must(command.CmdStackDeploy, deploy(st, "pw", "c", false))
	if got := h.vips("web_api"); got["web_back"] != "10.0.0.254/24" {
		t.Errorf("back to vip (the empty mode): %v", got)
	}

	// Removed: the service's VIP is free for the next one.
	h.must(command.CmdStackRemove, &command.StackRemove{Name: "web"})
	h.must(command.CmdStackDeploy, deploy(meshStack("nginx:1"), "pw", "c", false))
	if got := h.vips("web_api"); got["web_default"] != "10.30.0.6/29" || got[command.IngressName] != first[command.IngressName] {
		t.Errorf("after the stack was removed and deployed again: %v, want %v", got, first)
	}
	if h.network(command.IngressName).Stack != "" {
		t.Error("the ingress network belongs to a stack")
	}
}

// TestServiceRollbackMovesVIPs: a rollback keeps the VIPs of the networks the spec
// it returns to is on, drops the others and allocates none (an older build's
// rollback entries must apply as they did); the leader's ServiceEndpoints gives the
// missing ones.
func TestServiceRollbackMovesVIPs(t *testing.T) {
	h := newFSMHarness(t)
	h.must(command.CmdStackDeploy, deploy(meshStack("nginx:1"), "pw", "c", false))
	first := h.vips("web_api")
	st := meshStack("nginx:2")
	st.Services["api"].Ports = nil
	h.must(command.CmdStackDeploy, deploy(st, "pw", "c", false))
	if _, ok := h.vips("web_api")[command.IngressName]; ok {
		t.Fatal("a service that publishes nothing has an ingress VIP")
	}
	h.must(command.CmdServiceRollback, &command.ServiceRollback{ID: h.service("web_api").ID, Now: now})
	if got := h.vips("web_api"); !reflect.DeepEqual(got, map[string]string{"web_default": first["web_default"]}) {
		t.Errorf("after the rollback to the publishing spec: %v, want web_default's kept and no new one", got)
	}
	h.must(command.CmdServiceEndpoints, &command.ServiceEndpoints{IDs: []string{h.service("web_api").ID}})
	if got := h.vips("web_api"); !reflect.DeepEqual(got, first) {
		t.Errorf("after ServiceEndpoints: %v, want %v", got, first)
	}
	h.must(command.CmdServiceRollback, &command.ServiceRollback{ID: h.service("web_api").ID, Now: now})
	if got := h.vips("web_api"); !reflect.DeepEqual(got, map[string]string{"web_default": first["web_default"]}) {
		t.Errorf("after the rollback to the spec that publishes nothing: %v, want the ingress VIP gone", got)
	}
}

// TestOlderStackDeployAppliesAsWritten: a stack deploy entry an older build wrote
// (no endpoints field) allocates nothing, creates no ingress network, and may name a
// network ingress or give it a subnet in the ingress subnet, as it could then.
func TestOlderStackDeployAppliesAsWritten(t *testing.T) {
	h := newFSMHarness(t)
	st := meshStack("nginx:1")
	st.Networks["default"].Subnets = []string{"10.255.7.0/24"}
	st.Networks["default"].Name = command.IngressName
	type older command.StackDeploy // encodes without StackDeploy.MarshalJSON, so without the field
	body, err := json.Marshal(older(*deploy(st, "pw", "c", false)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), "endpoints") {
		t.Fatalf("the older entry has the field: %s", body)
	}
	h.index++
	if r := h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: append([]byte{byte(command.CmdStackDeploy)}, body...)}); r != nil {
		t.Fatalf("older entry: %v", r)
	}
	if v := h.service("web_api").Endpoint.VIPs; len(v) != 0 {
		t.Errorf("an older entry gave VIPs %v", v)
	}
	if n := h.network(command.IngressName); n.Ingress || n.Subnet != "10.255.7.0/24" {
		t.Errorf("the older entry's network: %+v", n)
	}
	if !strings.Contains(string(mustEncode(t, command.CmdStackDeploy, deploy(st, "pw", "c", false))), `"endpoints":true`) {
		t.Error("this build's entries lack the endpoints field")
	}
	// Until that network is renamed, no stack of this build can publish a port.
	mesh := meshStack("nginx:1")
	mesh.Name = "mesh"
	mesh.Secrets["pw"].Name, mesh.Configs["conf"].Name = "mesh_pw", "mesh_conf"
	mesh.Networks["default"] = &spec.Network{Name: "mesh_default", Driver: "overlay"}
	err = h.apply(command.CmdStackDeploy, deploy(mesh, "pw", "c", false))
	if !errors.Is(err, state.ErrConflict) || !strings.Contains(err.Error(), `network "ingress" is not the ingress network`) {
		t.Errorf("a publishing stack beside an older network named ingress: %v", err)
	}
}

func mustEncode(t *testing.T, ct command.Type, body any) []byte {
	t.Helper()
	data, err := command.Encode(ct, body)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestAllocationIsDeterministic: the same entries applied on two managers' states
// give the same rows, VIPs, ingress network and node endpoints included.
func TestAllocationIsDeterministic(t *testing.T) {
	a, b := newFSMHarness(t), newFSMHarness(t)
	two := meshStack("nginx:1")
	two.Services["worker"] = &spec.Service{Name: "worker", Image: "busybox:1", Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: ptr(uint64(1))},
		Networks: []spec.ServiceNetwork{{Name: "default"}},
		Ports:    []spec.Port{{Target: 53, Published: 53, Protocol: "udp", Mode: spec.PortModeIngress}}}
	entries := []struct {
		ct   command.Type
		body any
	}{
		{command.CmdNodeUpsert, node("n2")},
		{command.CmdNodeUpsert, node("n1")},
		{command.CmdStackDeploy, deploy(two, "pw", "c", false)},
		{command.CmdNodeUpsert, node("n3")},
		{command.CmdStackDeploy, deploy(meshStack("nginx:2"), "pw", "c", true)},
		{command.CmdNodeRemove, &command.NodeRemove{ID: "n1"}},
		{command.CmdNodeUpsert, node("n4")},
	}
	for _, e := range entries {
		a.must(e.ct, e.body)
		b.must(e.ct, e.body)
	}
	for _, h := range []*fsmHarness{a, b} {
		if n4 := h.node("n4"); len(n4.Networks) != 1 || n4.Networks[0].Addr != "10.255.63.254/18" {
			t.Errorf("n4 endpoints %+v, want n1's freed 10.255.63.254/18", n4.Networks)
		}
	}
	ta, tb := a.tx(), b.tx()
	sa, _ := ta.Services(nil)
	sb, _ := tb.Services(nil)
	na, _ := ta.Networks(nil)
	nb, _ := tb.Networks(nil)
	da, _ := ta.Nodes(nil)
	db, _ := tb.Nodes(nil)
	if !reflect.DeepEqual(sa, sb) || !reflect.DeepEqual(na, nb) || !reflect.DeepEqual(da, db) {
		t.Errorf("two states diverge:\nservices %+v\n      vs %+v\nnetworks %+v\n      vs %+v\nnodes %+v\n   vs %+v", sa, sb, na, nb, da, db)
	}
}

// TestNodeEndpoints: a node that joins after the ingress network exists gets an
// endpoint; writing its row again keeps it, whatever the proposer sent.
func TestNodeEndpoints(t *testing.T) {
	h := newFSMHarness(t)
	h.must(command.CmdNodeUpsert, node("n1"))
	if len(h.node("n1").Networks) != 0 {
		t.Fatal("a node has endpoints before the ingress network exists")
	}
	h.must(command.CmdStackDeploy, deploy(meshStack("nginx:1"), "pw", "c", false))
	h.must(command.CmdNodeUpsert, node("n2"))
	first := h.node("n2").Networks
	if len(first) != 1 || first[0].Network != h.network(command.IngressName).ID || first[0].Addr != "10.255.63.252/18" {
		t.Fatalf("n2 endpoints %+v, want the next free one below n1's and the VIP", first)
	}
	again := node("n2")
	again.Networks = []model.Attachment{{Network: "elsewhere", Addr: "10.9.9.9/24"}}
	h.must(command.CmdNodeUpsert, again)
	if got := h.node("n2").Networks; !reflect.DeepEqual(got, first) {
		t.Errorf("after a second write: %+v, want %+v", got, first)
	}
}

// TestIngressReserved: no stack network takes the ingress network's name or subnet,
// before or after it exists, and a stack's prune or removal keeps it.
func TestIngressReserved(t *testing.T) {
	h := newFSMHarness(t)
	named := webStack("nginx:1", 1)
	named.Networks["default"].Name = command.IngressName
	if err := h.apply(command.CmdStackDeploy, deploy(named, "pw", "c", false)); !errors.Is(err, state.ErrConflict) {
		t.Errorf("a stack network named ingress: %v", err)
	}
	named.Networks["default"].External = true
	if err := h.apply(command.CmdStackDeploy, deploy(named, "pw", "c", false)); !errors.Is(err, state.ErrConflict) {
		t.Errorf("the ingress network as an external network: %v", err)
	}
	inside := webStack("nginx:1", 1)
	inside.Networks["default"].Subnets = []string{"10.255.7.0/24"}
	for _, when := range []string{"before", "after"} {
		err := h.apply(command.CmdStackDeploy, deploy(inside, "pw", "c", false))
		if !errors.Is(err, state.ErrConflict) || !strings.Contains(err.Error(), ipam.IngressSubnet.String()) {
			t.Errorf("%s the ingress network exists, a stack network in its subnet: %v", when, err)
		}
		if when == "before" {
			h.must(command.CmdStackDeploy, deploy(meshStack("nginx:1"), "pw", "c", false))
		}
	}
	plain := webStack("nginx:1", 1)
	h.must(command.CmdStackDeploy, deploy(plain, "pw", "c", true))
	h.must(command.CmdStackRemove, &command.StackRemove{Name: "web"})
	if n := h.network(command.IngressName); !n.Ingress {
		t.Errorf("ingress network after prune and stack rm: %+v", n)
	}
}

// stripVIPs rewrites the service as a build without VIPs wrote it.
func (h *fsmHarness) stripVIPs(name string) *model.Service {
	h.t.Helper()
	old := h.service(name)
	h.index++
	err := h.f.State().Update(h.index, func(tx *state.WriteTxn) error {
		bare := old.Copy()
		bare.Endpoint = model.Endpoint{}
		return tx.UpsertService(bare)
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return old
}

// TestOlderServiceGetsVIPs: a service written by a build without VIPs gets them on
// the next write of its stack, or from the leader's ServiceEndpoints entry, unchanged
// otherwise: no new version, so no task is replaced.
func TestOlderServiceGetsVIPs(t *testing.T) {
	for _, how := range []string{"stack write", "leader"} {
		t.Run(how, func(t *testing.T) {
			h := newFSMHarness(t)
			h.must(command.CmdStackDeploy, deploy(meshStack("nginx:1"), "pw", "c", false))
			old := h.stripVIPs("web_api")
			if how == "stack write" {
				h.must(command.CmdStackDeploy, deploy(meshStack("nginx:1"), "pw", "c", false))
			} else {
				h.must(command.CmdServiceEndpoints, &command.ServiceEndpoints{IDs: []string{"gone", old.ID}})
			}
			got := h.service("web_api")
			if !reflect.DeepEqual(got.Endpoint.VIPs, old.Endpoint.VIPs) || got.SpecVersion != old.SpecVersion || got.PreviousSpec != nil {
				t.Errorf("VIPs %v version %d previous %v; want VIPs %v at version %d",
					got.Endpoint.VIPs, got.SpecVersion, got.PreviousSpec, old.Endpoint.VIPs, old.SpecVersion)
			}
		})
	}
}

// TestServiceEndpointsSkipsWhatItCannotDo: a service whose network its stack no
// longer defines keeps no VIP, and the others in the entry get theirs.
func TestServiceEndpointsSkipsWhatItCannotDo(t *testing.T) {
	h := newFSMHarness(t)
	two := meshStack("nginx:1")
	two.Services["worker"] = &spec.Service{Name: "worker", Image: "busybox:1", Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: ptr(uint64(1))},
		Networks: []spec.ServiceNetwork{{Name: "default"}}}
	h.must(command.CmdStackDeploy, deploy(two, "pw", "c", false))
	api, worker := h.stripVIPs("web_api"), h.stripVIPs("web_worker")
	h.index++
	err := h.f.State().Update(h.index, func(tx *state.WriteTxn) error {
		next := h.service("web_worker").Copy()
		next.Spec.Networks = []spec.ServiceNetwork{{Name: "undefined"}}
		return tx.UpsertService(next)
	})
	if err != nil {
		t.Fatal(err)
	}
	h.must(command.CmdServiceEndpoints, &command.ServiceEndpoints{IDs: []string{worker.ID, api.ID}})
	if v := h.service("web_worker").Endpoint.VIPs; len(v) != 0 {
		t.Errorf("worker on an undefined network got VIPs %v", v)
	}
	if got := h.service("web_api").Endpoint.VIPs; !reflect.DeepEqual(got, api.Endpoint.VIPs) {
		t.Errorf("api VIPs %v, want %v", got, api.Endpoint.VIPs)
	}
}

// TestDryRunOfUnchangedStackWritesNothing: a dry run (Simulate on a fork) of the
// stack as deployed changes no row; the first dry run of a publishing stack shows
// the ingress network on the fork and leaves the live state alone.
func TestDryRunOfUnchangedStackWritesNothing(t *testing.T) {
	h := newFSMHarness(t)
	h.must(command.CmdNodeUpsert, node("n1"))
	live := h.f.State()
	fork := live.Fork()
	if err := command.Simulate(fork, command.CmdStackDeploy, deploy(meshStack("nginx:1"), "pw", "c", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := command.IngressNetwork(fork.ReadTxn()); err != nil {
		t.Errorf("the dry run shows no ingress network: %v", err)
	}
	if _, err := command.IngressNetwork(live.ReadTxn()); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("the dry run made the ingress network live: %v", err)
	}

	h.must(command.CmdStackDeploy, deploy(meshStack("nginx:1"), "pw", "c", false))
	before := h.tx().Index(state.TableServices, state.TableNetworks, state.TableNodes)
	fork = h.f.State().Fork()
	if err := command.Simulate(fork, command.CmdStackDeploy, deploy(meshStack("nginx:1"), "pw", "c", false)); err != nil {
		t.Fatal(err)
	}
	if after := fork.ReadTxn().Index(state.TableServices, state.TableNetworks, state.TableNodes); after != before {
		t.Errorf("a dry run of the unchanged stack wrote services, networks or nodes (index %d, was %d)", after, before)
	}
}

// TestPlanGivingAReservedAddressIsSkipped: a plan computed before a stack write gave
// one of its tasks' addresses to a VIP (or a node endpoint) is skipped whole, as a
// stale one is; a plan clear of them applies.
func TestPlanGivingAReservedAddressIsSkipped(t *testing.T) {
	h := newFSMHarness(t)
	h.must(command.CmdNodeUpsert, node("n1"))
	h.must(command.CmdStackDeploy, deploy(meshStack("nginx:1"), "pw", "c", false))
	svc, def, ingress := h.service("web_api"), h.network("web_default"), h.network(command.IngressName)
	task := func(id string, atts ...model.Attachment) *model.Task {
		return &model.Task{ID: id, ServiceID: svc.ID, ServiceName: svc.Name, Slot: 1, NodeID: "n1", SpecVersion: svc.SpecVersion,
			DesiredState: model.TaskRunning, Status: model.TaskStatus{State: model.TaskAssigned, Timestamp: now}, CreatedAt: now, Networks: atts}
	}
	vip := model.Attachment{Network: def.ID, Addr: "10.30.0.6/29"}
	endpoint := model.Attachment{Network: ingress.ID, Addr: h.node("n1").Networks[0].Addr}
	free := model.Attachment{Network: def.ID, Addr: "10.30.0.2/29"}
	freeIngress := model.Attachment{Network: ingress.ID, Addr: "10.255.0.2/18"}
	// Free, but in the upper half of the ingress subnet, which tasks never get.
	upperIngress := model.Attachment{Network: ingress.ID, Addr: "10.255.32.2/18"}
	h.must(command.CmdPlanApply, &command.PlanApply{Plans: []*orchestrator.Plan{
		{ServiceID: svc.ID, SpecVersion: svc.SpecVersion, Create: []*model.Task{task("on-vip", free, vip)}},
		{ServiceID: svc.ID, SpecVersion: svc.SpecVersion, Create: []*model.Task{task("on-endpoint", free, endpoint)}},
		{ServiceID: svc.ID, SpecVersion: svc.SpecVersion, Create: []*model.Task{task("upper-half", free, upperIngress)}},
		{ServiceID: svc.ID, SpecVersion: svc.SpecVersion, Create: []*model.Task{task("clear", free, freeIngress)}},
	}})
	for id, want := range map[string]bool{"on-vip": false, "on-endpoint": false, "upper-half": false, "clear": true} {
		if _, err := h.tx().Task(nil, id); (err == nil) != want {
			t.Errorf("task %s written: %v, want %v", id, err == nil, want)
		}
	}
	// An assignment that gives a pending task a VIP's address is skipped too.
	pending := task("pending", []model.Attachment(nil)...)
	pending.Slot, pending.NodeID, pending.Status.State = 2, "", model.TaskPending
	h.must(command.CmdPlanApply, &command.PlanApply{Plans: []*orchestrator.Plan{{ServiceID: svc.ID, SpecVersion: svc.SpecVersion, Create: []*model.Task{pending}}}})
	h.must(command.CmdPlanApply, &command.PlanApply{Plans: []*orchestrator.Plan{{ServiceID: svc.ID, SpecVersion: svc.SpecVersion,
		Update: []orchestrator.TaskUpdate{{ID: "pending", NodeID: "n1", Status: &model.TaskStatus{State: model.TaskAssigned},
			Networks: []model.Attachment{vip}, UpdatedAt: now}}}}})
	if got, _ := h.tx().Task(nil, "pending"); got.Status.State != model.TaskPending || len(got.Networks) != 0 {
		t.Errorf("pending task after an assignment onto the VIP: %v %+v", got.Status.State, got.Networks)
	}
}
