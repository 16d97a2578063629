package api

import (
	"testing"

	"github.com/berthd/berth/cluster/model"
)

func TestCARotationOf(t *testing.T) {
	nodes := func(roots ...string) []*model.Node {
		var out []*model.Node
		for _, r := range roots {
			out = append(out, &model.Node{CertRoot: r})
		}
		return out
	}
	rotating := &model.Cluster{RootRotation: &model.RootRotation{Digest: "new"}}
	done := &model.Cluster{}
	for _, tc := range []struct {
		name  string
		cl    *model.Cluster
		nodes []*model.Node
		want  CARotation
	}{
		{"none rotated", rotating, nodes("old", "old", ""), CARotation{Rotated: 0, Nodes: 3}},
		{"some rotated", rotating, nodes("new", "old", "new"), CARotation{Rotated: 2, Nodes: 3}},
		{"all rotated, the cluster not yet told", rotating, nodes("new", "new"), CARotation{Rotated: 2, Nodes: 2}},
		{"done", done, nodes("new", "new"), CARotation{Rotated: 2, Nodes: 2, Done: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := caRotationOf(tc.cl, tc.nodes, "new"); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
