package scheduler

import "testing"

// Every condition the scheduler writes has a class of its own.
func TestReasonClass(t *testing.T) {
	r := &request{constraints: []constraint{{text: "node.labels.os == linux", kind: keyNodeLabel}, {text: "node.x ~ y", kind: keyInvalid}}}
	cases := map[failKind]string{
		failDown: "node_down", failNotReady: "node_not_ready", failPaused: "node_paused", failDraining: "node_draining",
		failPlatform: "platform", failResources: "resources", failMaxReplicas: "max_replicas", failHostPort: "host_port",
	}
	r.ports = []HostPort{{}}
	for kind, want := range cases {
		r.buckets = []failure{{kind: kind}}
		if got := ReasonClass(r.reason([]int{2})); got != want {
			t.Errorf("%q: class %q, want %q", r.reason([]int{2}), got, want)
		}
	}
	r.buckets = []failure{{kind: failConstraint, sub: 0}, {kind: failConstraint, sub: 1}}
	if got := ReasonClass(r.reason([]int{3, 1})); got != "constraint" {
		t.Errorf("constraint: %q", got)
	}
	if got := ReasonClass(r.reason([]int{1, 3})); got != "invalid_constraint" {
		t.Errorf("invalid constraint: %q", got)
	}
	for reason, want := range map[string]string{ReasonNoNodes: "no_nodes", "node is down": "other", "": "other"} {
		if got := ReasonClass(reason); got != want {
			t.Errorf("%q: class %q, want %q", reason, got, want)
		}
	}
}
