package agent

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/netstack"
	"github.com/berthd/berth/spec"
)

// viewAPI answers the network watch with what the test pushes, and hands the test
// every query it is asked.
type viewAPI struct {
	API
	answers chan viewReply
	queries chan api.Query
}

type viewReply struct {
	v     *api.NetworkView
	index uint64
	err   error
}

func newViewAPI() *viewAPI {
	return &viewAPI{answers: make(chan viewReply), queries: make(chan api.Query, 100)}
}

func (f *viewAPI) NodeNetworkView(ctx context.Context, q api.Query) (*api.NetworkView, api.QueryMeta, error) {
	f.queries <- q
	select {
	case a := <-f.answers:
		return a.v, api.QueryMeta{Index: a.index}, a.err
	case <-ctx.Done():
		return nil, api.QueryMeta{}, ctx.Err()
	}
}

// applyNetwork records the views Apply is given, failing the first fail of them.
type applyNetwork struct {
	Network
	mu      sync.Mutex
	fail    int
	applied []netstack.View
}

func (n *applyNetwork) Apply(_ context.Context, v netstack.View) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.applied = append(n.applied, v)
	if len(n.applied) <= n.fail {
		return errors.New("nft: commit refused")
	}
	return nil
}

func (n *applyNetwork) views() []netstack.View {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]netstack.View(nil), n.applied...)
}

// startWatch runs the agent's network watch until the test ends.
func startWatch(t *testing.T, f *viewAPI, nw *applyNetwork) {
	t.Helper()
	a, err := New(Config{API: f, Executor: struct{ Executor }{}, Network: nw, RunDir: t.TempDir(), NetworkRetry: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.watchNetwork(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func nextQuery(t *testing.T, f *viewAPI) api.Query {
	t.Helper()
	select {
	case q := <-f.queries:
		return q
	case <-time.After(20 * time.Second):
		t.Fatal("the agent asked for no network view within 20s")
	}
	return api.Query{}
}

func wireView(taskAddr string) *api.NetworkView {
	return &api.NetworkView{
		Underlay: "198.18.0.1",
		Networks: []*model.Network{{ID: "na", Name: "web_a", Subnet: "10.0.1.0/24", Gateway: "10.0.1.1", VNI: 4097},
			{ID: "ning", Name: "ingress", Subnet: "10.255.0.0/16", Gateway: "10.255.0.1", VNI: 4096, Ingress: true}},
		Endpoints: []api.NetworkEndpoint{
			{Network: "na", TaskID: "t1", ServiceID: "s1", NodeID: "n1", Addr: taskAddr, Node: "198.18.0.1", Ready: true},
			{Network: "ning", NodeID: "n2", Addr: "10.255.0.3", MAC: "02:42:0a:ff:00:03", Node: "198.18.0.2"},
		},
		Services: []api.NetworkService{{ID: "s1", Name: "web_api", ShortName: "api", Stack: "web",
			VIPs: map[string]string{"na": "10.0.1.2"}, Aliases: map[string][]string{"na": {"backend"}},
			IngressPorts: []spec.Port{{Target: 80, Published: 8080, Protocol: "tcp", Mode: spec.PortModeIngress}}}},
	}
}

func TestNetworkWatchAppliesTheConvertedView(t *testing.T) {
	f, nw := newViewAPI(), &applyNetwork{}
	startWatch(t, f, nw)
	if q := nextQuery(t, f); q.Index != 0 {
		t.Errorf("first query at index %d, want 0", q.Index)
	}
	f.answers <- viewReply{v: wireView("10.0.1.11"), index: 5}
	if q := nextQuery(t, f); q.Index != 5 {
		t.Errorf("second query at index %d, want 5", q.Index)
	}
	mac, _ := net.ParseMAC("02:42:0a:ff:00:03")
	want := netstack.View{
		Underlay: netip.MustParseAddr("198.18.0.1"),
		Networks: []netstack.Network{
			{ID: "na", Name: "web_a", Subnet: netip.MustParsePrefix("10.0.1.0/24"), Gateway: netip.MustParseAddr("10.0.1.1"), VNI: 4097},
			{ID: "ning", Name: "ingress", Subnet: netip.MustParsePrefix("10.255.0.0/16"), Gateway: netip.MustParseAddr("10.255.0.1"), VNI: 4096, Ingress: true},
		},
		Endpoints: []netstack.Endpoint{
			{Network: "na", TaskID: "t1", ServiceID: "s1", NodeID: "n1", Addr: netip.MustParseAddr("10.0.1.11"), Node: netip.MustParseAddr("198.18.0.1"), Ready: true},
			{Network: "ning", NodeID: "n2", Addr: netip.MustParseAddr("10.255.0.3"), MAC: mac, Node: netip.MustParseAddr("198.18.0.2")},
		},
		Services: []netstack.Service{{ID: "s1", Name: "web_api", ShortName: "api", Stack: "web",
			VIPs: map[string]netip.Addr{"na": netip.MustParseAddr("10.0.1.2")}, Aliases: map[string][]string{"na": {"backend"}},
			IngressPorts: []netstack.PortMapping{{Protocol: "tcp", Published: 8080, Target: 80}}}},
	}
	if got := nw.views(); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("applied %+v\nwant %+v", got, want)
	}
}

// A failed Apply is tried again with backoff (the watch's wait is the delay), until
// it succeeds.
func TestNetworkWatchRetriesAFailedApply(t *testing.T) {
	f, nw := newViewAPI(), &applyNetwork{fail: 2}
	startWatch(t, f, nw)
	nextQuery(t, f)
	v := wireView("10.0.1.11")
	f.answers <- viewReply{v: v, index: 5}
	var waits []time.Duration
	for range 3 {
		q := nextQuery(t, f)
		waits = append(waits, q.Wait)
		if q.Index != 5 {
			t.Errorf("query at index %d, want 5", q.Index)
		}
		if len(waits) < 3 {
			// The wait runs out: the same view comes back.
			f.answers <- viewReply{v: v, index: 5}
		}
	}
	if want := []time.Duration{time.Millisecond, 2 * time.Millisecond, 30 * time.Second}; !reflect.DeepEqual(waits, want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
	if got := nw.views(); len(got) != 3 || !reflect.DeepEqual(got[0], got[2]) {
		t.Errorf("%d applies, want 3 of the same view", len(got))
	}
}

// While the managers are unreachable the last view stays: nothing is applied until a
// view that differs arrives, and the watch starts over from index 0.
func TestNetworkWatchKeepsTheLastViewWhileManagersAreUnreachable(t *testing.T) {
	f, nw := newViewAPI(), &applyNetwork{}
	startWatch(t, f, nw)
	nextQuery(t, f)
	f.answers <- viewReply{v: wireView("10.0.1.11"), index: 5}
	nextQuery(t, f)
	for range 2 {
		f.answers <- viewReply{err: errors.New("connection refused")}
		if q := nextQuery(t, f); q.Index != 0 {
			t.Errorf("query after an error at index %d, want 0", q.Index)
		}
	}
	// Another manager answers with the same view, under its own index.
	f.answers <- viewReply{v: wireView("10.0.1.11"), index: 9}
	if q := nextQuery(t, f); q.Index != 9 {
		t.Errorf("query at index %d, want 9", q.Index)
	}
	if got := nw.views(); len(got) != 1 {
		t.Fatalf("%d applies after errors and an unchanged view, want the first only", len(got))
	}
	f.answers <- viewReply{v: wireView("10.0.1.12"), index: 10}
	nextQuery(t, f)
	got := nw.views()
	if len(got) != 2 || got[1].Endpoints[0].Addr != netip.MustParseAddr("10.0.1.12") {
		t.Errorf("applies %+v, want the new view second", got)
	}
}

func TestNetViewRefusesBadAddresses(t *testing.T) {
	for name, mangle := range map[string]func(*api.NetworkView){
		"underlay": func(v *api.NetworkView) { v.Underlay = "" },
		"subnet":   func(v *api.NetworkView) { v.Networks[0].Subnet = "10.0.1.0" },
		"endpoint": func(v *api.NetworkView) { v.Endpoints[0].Addr = "10.0.1.11/24" },
		"node":     func(v *api.NetworkView) { v.Endpoints[1].Node = "" },
		"mac":      func(v *api.NetworkView) { v.Endpoints[1].MAC = "02:42" },
		"vip":      func(v *api.NetworkView) { v.Services[0].VIPs["na"] = "x" },
		"port":     func(v *api.NetworkView) { v.Services[0].IngressPorts[0].Published = 70000 },
	} {
		v := wireView("10.0.1.11")
		mangle(v)
		if _, err := netView(v); err == nil {
			t.Errorf("%s: a bad view was converted", name)
		}
	}
	if _, err := netView(wireView("10.0.1.11")); err != nil {
		t.Errorf("good view: %v", err)
	}
}
