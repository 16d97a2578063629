package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/berthd/berth/spec"
)

func TestRanking(t *testing.T) {
	failedAt := func(version uint64, ago time.Duration, times int) func(*NodeInfo) {
		return func(n *NodeInfo) {
			for range times {
				n.Failures = append(n.Failures, Failure{ServiceID: testService, SpecVersion: version, At: now.Add(-ago)})
			}
		}
	}
	zone := func(z string) func(*NodeInfo) { return labels("zone", z) }
	tests := []struct {
		name     string
		nodes    []NodeInfo
		svc      *spec.Service
		replicas int
		tune     func(*Request)
		want     []string
	}{
		{
			name:     "empty nodes take turns by ID",
			nodes:    []NodeInfo{node("n3"), node("n1"), node("n2")},
			svc:      service(),
			replicas: 6,
			want:     []string{"n1", "n2", "n3", "n1", "n2", "n3"},
		},
		{
			name:     "fewest tasks of the service first, evening out existing counts",
			nodes:    []NodeInfo{node("n1", running(2, 2)), node("n2"), node("n3", running(1, 1))},
			svc:      service(),
			replicas: 3,
			want:     []string{"n2", "n2", "n3"},
		},
		{
			name: "then fewest tasks overall",
			nodes: []NodeInfo{
				node("n1", running(0, 5)),
				node("n2", running(0, 1)),
				node("n3", running(1, 1)),
			},
			svc:      service(),
			replicas: 3,
			want:     []string{"n2", "n1", "n3"},
		},
		{
			name:     "max per node caps within one call",
			nodes:    []NodeInfo{node("n1"), node("n2"), node("n3")},
			svc:      service(maxPerNode(2)),
			replicas: 5,
			want:     []string{"n1", "n2", "n3", "n1", "n2"},
		},
		{
			name:     "max per node counts existing tasks",
			nodes:    []NodeInfo{node("n1", running(1, 1)), node("n2")},
			svc:      service(maxPerNode(2)),
			replicas: 4,
			want:     []string{"n2", "n1", "n2"},
		},
		{
			name: "two spread levels, unlabelled nodes as their own group",
			nodes: []NodeInfo{
				node("a1", labels("zone", "a", "rack", "1")),
				node("a2", labels("zone", "a", "rack", "2")),
				node("b1", labels("zone", "b", "rack", "1")),
				node("b2", labels("zone", "b", "rack", "1")),
				node("x1"),
			},
			svc:      service(spread("node.labels.zone", "node.labels.rack")),
			replicas: 6,
			// Zones "" (x1), a, b get two each; within a, one per rack; within b's
			// single rack, one per node.
			want: []string{"x1", "a1", "b1", "x1", "a2", "b2"},
		},
		{
			name: "groups are spread evenly whatever their size",
			nodes: []NodeInfo{
				node("a1", zone("a")),
				node("b1", zone("b")), node("b2", zone("b")), node("b3", zone("b")),
			},
			svc:      service(spread("node.labels.zone")),
			replicas: 4,
			want:     []string{"a1", "b1", "a1", "b2"},
		},
		{
			name: "existing tasks count for their group, full nodes included",
			nodes: []NodeInfo{
				node("a1", zone("a"), running(3, 3)),
				node("a2", zone("a")),
				node("b1", zone("b")),
			},
			svc:      service(spread("node.labels.zone"), maxPerNode(3)),
			replicas: 4,
			want:     []string{"b1", "b1", "b1", "a2"},
		},
		{
			name: "engine labels spread too",
			nodes: []NodeInfo{
				node("n1", func(n *NodeInfo) { n.EngineLabels = map[string]string{"disk": "ssd"} }),
				node("n2", func(n *NodeInfo) { n.EngineLabels = map[string]string{"disk": "ssd"} }),
				node("n3", func(n *NodeInfo) { n.EngineLabels = map[string]string{"disk": "hdd"} }),
			},
			svc:      service(spread("engine.labels.disk")),
			replicas: 4,
			want:     []string{"n3", "n1", "n3", "n2"},
		},
		{
			name: "recent failures of this version rank a node last",
			nodes: []NodeInfo{
				node("n1", failedAt(2, time.Minute, 3)),
				node("n2", failedAt(2, time.Minute, 2)),                      // below the threshold
				node("n3", failedAt(1, time.Minute, 3)),                      // another version
				node("n4", failedAt(2, 6*time.Minute, 3)),                    // outside the window
				node("n5", failedAt(2, 5*time.Minute, 1), failedAt(2, 0, 2)), // the window's edge counts
			},
			svc:      service(maxPerNode(1)),
			replicas: 5,
			want:     []string{"n2", "n3", "n4", "n1", "n5"},
		},
		{
			name: "failure threshold and window are tunable",
			nodes: []NodeInfo{
				node("n1", failedAt(2, time.Minute, 3)),
				node("n2", failedAt(2, time.Minute, 2)),
				node("n3", failedAt(1, time.Minute, 3)),
				node("n4", failedAt(2, 6*time.Minute, 3)),
			},
			svc:      service(maxPerNode(1)),
			replicas: 4,
			tune:     func(r *Request) { r.FailureThreshold, r.FailureWindow = 2, 10*time.Minute },
			want:     []string{"n3", "n1", "n2", "n4"},
		},
		{
			name: "a failing node still takes tasks when nothing else can",
			nodes: []NodeInfo{
				node("n1", failedAt(2, time.Minute, 3)),
				node("n2"),
			},
			svc:      service(maxPerNode(2)),
			replicas: 4,
			want:     []string{"n2", "n2", "n1", "n1"},
		},
		{
			name:     "an avoided node ranks last, and still takes tasks when nothing else can",
			nodes:    []NodeInfo{node("n1"), node("n2", running(1, 1)), node("n3")},
			svc:      service(maxPerNode(2)),
			replicas: 5,
			tune:     func(r *Request) { r.Avoid = []string{"n1", "n9"} },
			want:     []string{"n3", "n2", "n3", "n1", "n1"},
		},
		{
			name: "a group with only failing nodes ranks after healthy groups",
			nodes: []NodeInfo{
				node("a1", zone("a"), failedAt(2, time.Minute, 3)),
				node("b1", zone("b")),
			},
			svc:      service(spread("node.labels.zone"), maxPerNode(2)),
			replicas: 3,
			want:     []string{"b1", "b1", "a1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(tt.replicas, tt.svc)
			if tt.tune != nil {
				tt.tune(&req)
			}
			res := Schedule(tt.nodes, req, now)
			if got := placedOn(res); !slices.Equal(got, tt.want) {
				t.Fatalf("got  %v\nwant %v (%s)", got, tt.want, res.Reason)
			}
			for i, a := range res.Assignments {
				if a.Task != i || tt.nodes[a.Node].ID != a.NodeID {
					t.Fatalf("assignment %d is %+v", i, a)
				}
			}
		})
	}
}

// TestScheduleMatchesReference checks the heap-based ranking against a direct
// transcription of the rules (rescan every node for every task) on random clusters,
// and that the order of the nodes given does not matter.
func TestScheduleMatchesReference(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 7))
		nodes, req := randomCase(rng)
		want := referenceSchedule(nodes, req, now)
		res := Schedule(nodes, req, now)
		got := placedOn(res)
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d: %d nodes, request %+v\n got %v\nwant %v", seed, len(nodes), req.Service.Deploy.Placement, got, want)
		}
		if res.Unplaced != req.Replicas-len(got) || (res.Unplaced > 0) != (res.Reason != "") {
			t.Fatalf("seed %d: unplaced %d, reason %q", seed, res.Unplaced, res.Reason)
		}
		shuffled := slices.Clone(nodes)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		again := Schedule(shuffled, req, now)
		if !slices.Equal(placedOn(again), got) || again.Reason != res.Reason {
			t.Fatalf("seed %d: node order changed the result:\n%v %q\n%v %q", seed, got, res.Reason, placedOn(again), again.Reason)
		}
	}
}

func randomCase(rng *rand.Rand) ([]NodeInfo, Request) {
	pick := func(vals ...string) string { return vals[rng.IntN(len(vals))] }
	nodes := make([]NodeInfo, 1+rng.IntN(40))
	for i := range nodes {
		n := node(fmt.Sprintf("n%02d", i))
		n.Labels = map[string]string{}
		if z := pick("a", "b", "c", ""); z != "" {
			n.Labels["zone"] = z
		}
		if r := pick("1", "2", ""); r != "" {
			n.Labels["rack"] = r
		}
		svc := rng.IntN(4)
		n.ServiceTasks = map[string]int{testService: svc}
		n.Tasks = svc + rng.IntN(4)
		n.Reserved.NanoCPUs = spec.NanoCPUs(rng.IntN(4)) * 1e9
		if rng.IntN(5) == 0 {
			n.State = "down"
		}
		if rng.IntN(4) == 0 {
			for range 3 {
				n.Failures = append(n.Failures, Failure{ServiceID: testService, SpecVersion: 2, At: now})
			}
		}
		if rng.IntN(6) == 0 {
			n.HostPorts = map[HostPort]int{{"tcp", 80}: 1}
		}
		nodes[i] = n
	}
	s := service()
	switch rng.IntN(4) {
	case 1:
		s.Deploy.Placement.Preferences = []spec.Preference{{Spread: "node.labels.zone"}}
	case 2, 3:
		s.Deploy.Placement.Preferences = []spec.Preference{{Spread: "node.labels.zone"}, {Spread: "node.labels.rack"}}
	}
	s.Deploy.Placement.MaxReplicasPerNode = uint64(rng.IntN(4))
	if rng.IntN(2) == 0 {
		s.Deploy.Resources.Reservations = &spec.Resource{CPUs: 5e8}
	}
	if rng.IntN(8) == 0 {
		s.Ports = []spec.Port{{Target: 80, Published: 80, Protocol: "tcp", Mode: spec.PortModeHost}}
	}
	if rng.IntN(4) == 0 {
		s.Deploy.Placement.Constraints = []string{"node.labels.zone != c"}
	}
	return nodes, newRequest(1+rng.IntN(60), s)
}

// referenceSchedule restates the ranking rules as plainly as possible: for every task,
// walk the preference levels choosing among the groups that still have a node able to
// take a task, then choose the node.
func referenceSchedule(nodes []NodeInfo, req Request, now time.Time) []string {
	r := compile(&req, now)
	type work struct {
		static, open, failing bool
		svc, total            int
		free                  Resources
	}
	w := make([]work, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		if r.checkNode(n) != (failure{}) {
			continue
		}
		w[i] = work{static: true, failing: r.failedRecently(n), svc: n.ServiceTasks[testService], total: n.Tasks,
			free: Resources{n.Total.NanoCPUs - n.Reserved.NanoCPUs, n.Total.MemoryBytes - n.Reserved.MemoryBytes}}
		w[i].open = r.checkCapacity(n, w[i].free, w[i].svc, false) == failure{}
	}
	var out []string
	for range req.Replicas {
		var path []string
		inPath := func(i, levels int) bool {
			for l := range levels {
				if r.prefs[l].value(&nodes[i]) != path[l] {
					return false
				}
			}
			return true
		}
		for lvl := range r.prefs {
			type agg struct{ count, open, healthy int }
			groups := map[string]*agg{}
			for i := range nodes {
				if !w[i].static || !inPath(i, lvl) {
					continue
				}
				v := r.prefs[lvl].value(&nodes[i])
				g := groups[v]
				if g == nil {
					g = &agg{}
					groups[v] = g
				}
				g.count += w[i].svc
				if w[i].open {
					g.open++
					if !w[i].failing {
						g.healthy++
					}
				}
			}
			best, found := "", false
			for v, g := range groups {
				if g.open == 0 {
					continue
				}
				if !found {
					best, found = v, true
					continue
				}
				b := groups[best]
				switch {
				case (g.healthy > 0) != (b.healthy > 0):
					if g.healthy > 0 {
						best = v
					}
				case g.count != b.count:
					if g.count < b.count {
						best = v
					}
				case v < best:
					best = v
				}
			}
			if !found {
				break
			}
			path = append(path, best)
		}
		chosen := -1
		for i := range nodes {
			if !w[i].open || len(path) != len(r.prefs) || !inPath(i, len(r.prefs)) {
				continue
			}
			if chosen < 0 {
				chosen = i
				continue
			}
			a, b := w[i], w[chosen]
			if a.failing != b.failing {
				if !a.failing {
					chosen = i
				}
				continue
			}
			if a.svc != b.svc {
				if a.svc < b.svc {
					chosen = i
				}
				continue
			}
			if a.total != b.total {
				if a.total < b.total {
					chosen = i
				}
				continue
			}
			if nodes[i].ID < nodes[chosen].ID {
				chosen = i
			}
		}
		if chosen < 0 {
			break
		}
		out = append(out, nodes[chosen].ID)
		c := &w[chosen]
		c.svc++
		c.total++
		c.free.NanoCPUs -= r.need.NanoCPUs
		c.free.MemoryBytes -= r.need.MemoryBytes
		c.open = r.checkCapacity(&nodes[chosen], c.free, c.svc, true) == failure{}
	}
	return out
}
