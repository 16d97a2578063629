package spec_test

import (
	"testing"

	"github.com/berthd/berth/spec"
)

func TestValidateReplicasLimit(t *testing.T) {
	runProblemCases(t, []problemCase{
		{
			name: "the default limit is accepted", noWarnings: true,
			files: withService("    deploy: {replicas: 10000}\n"),
		},
		{
			name:  "above the default limit warns: the cluster decides",
			files: withService("    deploy: {replicas: 10001}\n"),
			warns: []want{{"web", "deploy.replicas", "10001 is above the default limit of 10000 replicas per service"},
				{"web", "deploy.replicas", "berth update --max-replicas N"}},
		},
		{
			name:  "an absurd count is refused, with the limit named",
			files: withService("    deploy: {replicas: 100000000}\n"),
			errs:  []want{{"web", "deploy.replicas", "100000000 is above 1000000, the most replicas per service a cluster allows"}},
		},
		{
			name:  "a job counts too",
			files: withService("    deploy: {mode: replicated-job, replicas: 2000000}\n"),
			errs:  []want{{"web", "deploy.replicas", "2000000 is above 1000000"}},
		},
		{
			name:  "a global service's replicas are ignored, not counted",
			files: withService("    deploy: {mode: global, replicas: 100000000}\n"),
			warns: []want{{"web", "deploy.replicas", "replicas is ignored in global mode"}},
		},
	})
}

func TestReplicasProblemNamesFieldAndLimit(t *testing.T) {
	n := uint64(100_000_000)
	s := &spec.Service{Name: "web", Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: &n}}
	p := spec.ReplicasProblem("huge", s, spec.DefaultMaxReplicas)
	want := "stack huge, service web, deploy.replicas: 100000000 is above the cluster's limit of 10000 replicas per service; lower it, or raise the limit with berth update --max-replicas N"
	if p == nil || p.String() != want {
		t.Fatalf("problem = %v, want %q", p, want)
	}
	if p := spec.ReplicasProblem("huge", s, n); p != nil {
		t.Errorf("at the limit: %v, want none", p)
	}
}
