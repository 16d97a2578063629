package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// rowStore is a control.Store whose rows the test writes itself, at increasing
// indexes, as the FSM would: no reconciler moves them.
type rowStore struct {
	t   *testing.T
	st  *state.Store
	mu  sync.Mutex
	idx uint64
}

func newRowStore(t *testing.T) *rowStore {
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	return &rowStore{t: t, st: st}
}

func (s *rowStore) State() *state.Store { return s.st }

func (s *rowStore) StateIndex() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idx
}

func (s *rowStore) Apply(context.Context, command.Type, any) (uint64, error) {
	return 0, errors.New("rowStore: no raft")
}

func (s *rowStore) write(fn func(*state.WriteTxn) error) uint64 {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idx++
	if err := s.st.Update(s.idx, fn); err != nil {
		s.t.Fatal(err)
	}
	return s.idx
}

func netNode(id, addr string, st model.NodeState, nets ...model.Attachment) *model.Node {
	return &model.Node{ID: id, Hostname: "h-" + id, Role: model.RoleWorker, Availability: model.AvailabilityActive, Addr: addr,
		Status: model.NodeStatus{State: st}, Networks: nets}
}

func netTask(id, svc, node string, observed, desired model.TaskState, atts ...model.Attachment) *model.Task {
	return &model.Task{ID: id, ServiceID: svc, NodeID: node, DesiredState: desired,
		Status: model.TaskStatus{State: observed}, Networks: atts}
}

// netFixture: overlay networks "na" (web_a) and "nb" (web_b) and the ingress "ning";
// nodes n1 and n2 ready, n3 down, n4 with only its ingress endpoint; web_api (VIPs on
// na and the ingress, an alias on na, port 8080 published in ingress mode) has tasks
// on na on n1 (running), n2 (starting) and n3 (running, but its node is down), and a
// failed one on nb on n1; web_db (dnsrr) has a running task on nb on n2.
func netFixture(t *testing.T) (*rowStore, *control.Control) {
	s := newRowStore(t)
	s.write(func(w *state.WriteTxn) error {
		for _, n := range []*model.Network{
			{ID: "na", Name: "web_a", Stack: "web", Driver: "overlay", VNI: 4097, Subnet: "10.0.1.0/24", Gateway: "10.0.1.1"},
			{ID: "nb", Name: "web_b", Stack: "web", Driver: "overlay", VNI: 4098, Subnet: "10.0.2.0/24", Gateway: "10.0.2.1"},
			{ID: "ning", Name: "ingress", Driver: "overlay", VNI: 4096, Subnet: "10.255.0.0/16", Gateway: "10.255.0.1", Ingress: true},
		} {
			if err := w.UpsertNetwork(n); err != nil {
				return err
			}
		}
		for _, n := range []*model.Node{
			netNode("n1", "198.18.0.1:7946", model.NodeReady, model.Attachment{Network: "ning", Addr: "10.255.0.2/16"}),
			netNode("n2", "198.18.0.2:7946", model.NodeReady),
			netNode("n3", "198.18.0.3:7946", model.NodeDown, model.Attachment{Network: "ning", Addr: "10.255.0.3/16"}),
			netNode("n4", "198.18.0.4", model.NodeReady, model.Attachment{Network: "ning", Addr: "10.255.0.4/16"}),
		} {
			if err := w.UpsertNode(n); err != nil {
				return err
			}
		}
		err := w.UpsertStack(&model.Stack{Name: "web", Spec: &spec.Stack{Name: "web", Networks: map[string]*spec.Network{
			"a": {Name: "web_a", Driver: "overlay"}, "b": {Name: "web_b", Driver: "overlay"}}}})
		if err != nil {
			return err
		}
		api := &model.Service{ID: "s1", Name: "web_api", Stack: "web", Spec: spec.Service{Name: "api",
			Networks: []spec.ServiceNetwork{{Name: "a", Aliases: []string{"backend"}}},
			Ports: []spec.Port{{Target: 80, Published: 8080, Protocol: "tcp", Mode: spec.PortModeIngress},
				{Target: 81, Published: 8081, Protocol: "tcp", Mode: spec.PortModeHost}},
			Deploy: spec.Deploy{EndpointMode: "vip"}},
			Endpoint: model.Endpoint{VIPs: []model.VIP{{Network: "na", Addr: "10.0.1.2/24"}, {Network: "ning", Addr: "10.255.0.5/16"}}}}
		db := &model.Service{ID: "s2", Name: "web_db", Stack: "web", Spec: spec.Service{Name: "db",
			Networks: []spec.ServiceNetwork{{Name: "b"}}, Deploy: spec.Deploy{EndpointMode: "dnsrr"}}}
		for _, svc := range []*model.Service{api, db} {
			if err := w.UpsertService(svc); err != nil {
				return err
			}
		}
		return w.UpsertTasks([]*model.Task{
			netTask("t1", "s1", "n1", model.TaskRunning, model.TaskRunning, model.Attachment{Network: "na", Addr: "10.0.1.11/24"}),
			netTask("t2", "s1", "n2", model.TaskStarting, model.TaskRunning, model.Attachment{Network: "na", Addr: "10.0.1.12/24"}),
			netTask("t3", "s1", "n3", model.TaskRunning, model.TaskRunning, model.Attachment{Network: "na", Addr: "10.0.1.13/24"}),
			netTask("t5", "s1", "n1", model.TaskFailed, model.TaskShutdown, model.Attachment{Network: "nb", Addr: "10.0.2.15/24"}),
			netTask("t4", "s2", "n2", model.TaskRunning, model.TaskRunning, model.Attachment{Network: "nb", Addr: "10.0.2.14/24"}),
			netTask("t6", "s2", "", model.TaskPending, model.TaskRunning, model.Attachment{Network: "nb", Addr: "10.0.2.16/24"}),
		})
	})
	return s, control.New(control.Config{Store: s})
}

func netIDs(v *api.NetworkView) []string {
	var out []string
	for _, n := range v.Networks {
		out = append(out, n.ID)
	}
	return out
}

// endpointKeys names each endpoint by its task (or node, for a node's own) and
// readiness: "t1+" ready, "t2-" not.
func endpointKeys(v *api.NetworkView) []string {
	var out []string
	for _, e := range v.Endpoints {
		k := e.TaskID
		if k == "" {
			k = e.NodeID
		}
		if e.Ready {
			k += "+"
		} else {
			k += "-"
		}
		out = append(out, k)
	}
	return out
}

// checkEncoded checks that a view's encoding, what the handler sends, says what the
// view does.
func checkEncoded(t *testing.T, v *api.NetworkView) {
	t.Helper()
	var dec api.NetworkView
	if err := json.Unmarshal(v.Encoded, &dec); err != nil {
		t.Fatalf("encoded view: %v\n%s", err, v.Encoded)
	}
	plain := *v
	plain.Encoded = nil
	want, _ := json.Marshal(plain)
	got, _ := json.Marshal(dec)
	if !bytes.Equal(got, want) {
		t.Errorf("encoded view decodes to\n%s\nwant\n%s", got, want)
	}
}

func TestNodeNetworkViewContents(t *testing.T) {
	_, c := netFixture(t)
	ctx := context.Background()
	v1, meta, err := c.NodeNetworkView(ctx, "n1", api.Query{})
	if err != nil {
		t.Fatal(err)
	}
	checkEncoded(t, v1)
	if meta.Index == 0 || v1.Underlay != "198.18.0.1" {
		t.Errorf("index %d, underlay %q", meta.Index, v1.Underlay)
	}
	// n1's failed task on nb does not bring nb; its ingress endpoint brings the ingress.
	if got := netIDs(v1); !slices.Equal(got, []string{"na", "ning"}) {
		t.Errorf("n1 networks %v, want [na ning]", got)
	}
	// t3 and n3's ingress endpoint are on a down node: left out.
	if got := endpointKeys(v1); !slices.Equal(got, []string{"t1+", "t2-", "n1+", "n4+"}) {
		t.Errorf("n1 endpoints %v", got)
	}
	for _, e := range v1.Endpoints {
		if e.TaskID == "t2" && (e.Addr != "10.0.1.12" || e.Node != "198.18.0.2" || e.NodeID != "n2" || e.ServiceID != "s1") {
			t.Errorf("t2's endpoint: %+v", e)
		}
	}
	if len(v1.Services) != 1 {
		t.Fatalf("n1 services %+v, want web_api only", v1.Services)
	}
	s := v1.Services[0]
	if s.Name != "web_api" || s.ShortName != "api" || s.Stack != "web" || s.DNSRR ||
		s.VIPs["na"] != "10.0.1.2" || s.VIPs["ning"] != "10.255.0.5" ||
		!slices.Equal(s.Aliases["na"], []string{"backend"}) ||
		len(s.IngressPorts) != 1 || s.IngressPorts[0].Published != 8080 {
		t.Errorf("web_api: %+v", s)
	}

	v2, _, err := c.NodeNetworkView(ctx, "n2", api.Query{})
	if err != nil {
		t.Fatal(err)
	}
	checkEncoded(t, v2)
	if got := netIDs(v2); !slices.Equal(got, []string{"na", "nb"}) {
		t.Errorf("n2 networks %v, want [na nb]", got)
	}
	// The pending task t6 has no endpoint; nor has the failed t5.
	if got := endpointKeys(v2); !slices.Equal(got, []string{"t1+", "t2-", "t4+"}) {
		t.Errorf("n2 endpoints %v", got)
	}
	if len(v2.Services) != 2 || v2.Services[1].ID != "s2" || !v2.Services[1].DNSRR {
		t.Errorf("n2 services %+v", v2.Services)
	}

	v4, _, err := c.NodeNetworkView(ctx, "h-n4", api.Query{})
	if err != nil {
		t.Fatal(err)
	}
	checkEncoded(t, v4)
	if got := netIDs(v4); !slices.Equal(got, []string{"ning"}) || v4.Underlay != "198.18.0.4" {
		t.Errorf("n4 networks %v underlay %q", got, v4.Underlay)
	}
	if _, _, err := c.NodeNetworkView(ctx, "nope", api.Query{}); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("unknown node: %v", err)
	}
}

type viewAnswer struct {
	v    *api.NetworkView
	meta api.QueryMeta
	err  error
}

func watchView(c *control.Control, node string, index uint64, wait time.Duration) <-chan viewAnswer {
	ch := make(chan viewAnswer, 1)
	go func() {
		v, meta, err := c.NodeNetworkView(context.Background(), node, api.Query{Index: index, Wait: wait})
		ch <- viewAnswer{v, meta, err}
	}()
	return ch
}

func answer(t *testing.T, ch <-chan viewAnswer, what string) viewAnswer {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatalf("%s: %v", what, a.err)
		}
		return a
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no answer within 20s", what)
	}
	return viewAnswer{}
}

// A node's watch answers when its own view changes, not on a change to a network it
// is not on; a node that goes down leaves every view.
func TestNodeNetworkViewWakesOnlyForItsNetworks(t *testing.T) {
	s, c := netFixture(t)
	ctx := context.Background()
	_, m1, err := c.NodeNetworkView(ctx, "n1", api.Query{})
	if err != nil {
		t.Fatal(err)
	}
	_, m2, err := c.NodeNetworkView(ctx, "n2", api.Query{})
	if err != nil {
		t.Fatal(err)
	}
	// t4 on nb stops being ready: n2 (on nb) sees it, n1 (not on nb) does not.
	w1 := watchView(c, "n1", m1.Index, time.Second)
	w2 := watchView(c, "n2", m2.Index, 30*time.Second)
	idx := s.write(func(w *state.WriteTxn) error {
		return w.UpsertTask(netTask("t4", "s2", "n2", model.TaskRunning, model.TaskShutdown, model.Attachment{Network: "nb", Addr: "10.0.2.14/24"}))
	})
	a2 := answer(t, w2, "n2 after t4 changed")
	if a2.meta.Index != idx || !slices.Equal(endpointKeys(a2.v), []string{"t1+", "t2-", "t4-"}) {
		t.Errorf("n2: index %d (want %d), endpoints %v", a2.meta.Index, idx, endpointKeys(a2.v))
	}
	if a1 := answer(t, w1, "n1 after t4 changed"); a1.meta.Index != m1.Index {
		t.Errorf("n1 answered with index %d after a change outside its networks, want its old %d", a1.meta.Index, m1.Index)
	}

	// A change of status that leaves the view as it was wakes nobody either.
	w1 = watchView(c, "n1", m1.Index, time.Second)
	s.write(func(w *state.WriteTxn) error {
		return w.UpsertTask(netTask("t2", "s1", "n2", model.TaskStarting, model.TaskRunning, model.Attachment{Network: "na", Addr: "10.0.1.12/24"}))
	})
	if a1 := answer(t, w1, "n1 after a no-op write"); a1.meta.Index != m1.Index {
		t.Errorf("n1 woken by a write that changed nothing of its view: index %d", a1.meta.Index)
	}

	// n2 goes down: its endpoint t2 leaves n1's view.
	w1 = watchView(c, "n1", m1.Index, 30*time.Second)
	idx = s.write(func(w *state.WriteTxn) error {
		return w.UpsertNode(netNode("n2", "198.18.0.2:7946", model.NodeDown))
	})
	a1 := answer(t, w1, "n1 after n2 went down")
	if a1.meta.Index != idx || !slices.Equal(endpointKeys(a1.v), []string{"t1+", "n1+", "n4+"}) {
		t.Errorf("n1: index %d (want %d), endpoints %v", a1.meta.Index, idx, endpointKeys(a1.v))
	}
}
