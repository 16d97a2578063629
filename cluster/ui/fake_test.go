package ui_test

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
)

// fakeCluster is an in-memory ui.Cluster.
type fakeCluster struct {
	sources  []*api.SourceInfo
	stacks   []*api.StackSummary
	services []*api.ServiceStatus
	tasks    []*api.TaskInfo
	nodes    []*model.Node
	view     *api.NetworkView
	plan     *api.PlanResponse
	// events feeds the events watch after its first read, which finds the log at
	// index 1.
	events chan []*api.Event
}

var errNoSuch = fmt.Errorf("no such object")

func (f *fakeCluster) Sources(context.Context, api.Query) ([]*api.SourceInfo, api.QueryMeta, error) {
	return f.sources, api.QueryMeta{}, nil
}

func (f *fakeCluster) Source(_ context.Context, name string, _ api.Query) (*api.SourceInfo, api.QueryMeta, error) {
	return find(f.sources, "source", name, func(s *api.SourceInfo) bool { return s.Name == name })
}

func (f *fakeCluster) Plan(context.Context, *api.PlanRequest) (*api.PlanResponse, error) {
	return f.plan, nil
}

func (f *fakeCluster) Stacks(context.Context, api.Query) ([]*api.StackSummary, api.QueryMeta, error) {
	return f.stacks, api.QueryMeta{}, nil
}

func (f *fakeCluster) Services(_ context.Context, flt api.ServiceFilter, _ api.Query) ([]*api.ServiceStatus, api.QueryMeta, error) {
	var out []*api.ServiceStatus
	for _, s := range f.services {
		if flt.Stack == "" || s.Stack == flt.Stack {
			out = append(out, s)
		}
	}
	return out, api.QueryMeta{}, nil
}

func (f *fakeCluster) Service(_ context.Context, ref string, _ api.Query) (*api.ServiceStatus, api.QueryMeta, error) {
	return find(f.services, "service", ref, func(s *api.ServiceStatus) bool { return s.Name == ref || s.ID == ref })
}

func (f *fakeCluster) Tasks(_ context.Context, flt api.TaskFilter, _ api.Query) ([]*api.TaskInfo, api.QueryMeta, error) {
	var out []*api.TaskInfo
	for _, t := range f.tasks {
		if flt.Service == "" || t.ServiceID == flt.Service {
			out = append(out, t)
		}
	}
	return out, api.QueryMeta{}, nil
}

func (f *fakeCluster) Nodes(context.Context, api.Query) ([]*model.Node, api.QueryMeta, error) {
	return f.nodes, api.QueryMeta{}, nil
}

func (f *fakeCluster) Node(_ context.Context, ref string, _ api.Query) (*model.Node, api.QueryMeta, error) {
	return find(f.nodes, "node", ref, func(n *model.Node) bool { return n.Hostname == ref || n.ID == ref })
}

func (f *fakeCluster) NodeNetworkView(context.Context, string, api.Query) (*api.NetworkView, api.QueryMeta, error) {
	return f.view, api.QueryMeta{}, nil
}

func (f *fakeCluster) Events(ctx context.Context, _ api.EventFilter, q api.Query) ([]*api.Event, api.QueryMeta, error) {
	if q.Index == math.MaxUint64 {
		return nil, api.QueryMeta{Index: 1}, nil
	}
	select {
	case evs := <-f.events:
		return evs, api.QueryMeta{Index: q.Index + 1}, nil
	case <-ctx.Done():
		return nil, api.QueryMeta{}, ctx.Err()
	}
}

// find is the first of rows that match, or errNoSuch naming the kind and ref.
func find[T any](rows []T, kind, ref string, match func(T) bool) (T, api.QueryMeta, error) {
	i := slices.IndexFunc(rows, match)
	if i < 0 {
		var zero T
		return zero, api.QueryMeta{}, fmt.Errorf("%s %s: %w", kind, ref, errNoSuch)
	}
	return rows[i], api.QueryMeta{}, nil
}
