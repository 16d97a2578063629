package ui

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/api/plantext"
	"github.com/berthd/berth/cluster/model"
)

// maxPlacementLines bounds the placement preview's lines per service, as `berth
// diff` does.
const maxPlacementLines = 20

// networkWait bounds how long a node's page waits for the network index, which a
// manager builds on demand.
const networkWait = 2 * time.Second

// overviewPage is /ui/: the sources and the stacks with their replicas.
type overviewPage struct {
	Sources []*api.SourceInfo
	Stacks  []stackRow
}

type stackRow struct {
	*api.StackSummary
	Running, Desired uint64
}

func (h *handler) overview(r *http.Request) (string, any, error) {
	ctx := r.Context()
	sources, _, err := h.c.Sources(ctx, api.Query{})
	if err != nil {
		return "", nil, fmt.Errorf("list the sources: %w", err)
	}
	stacks, _, err := h.c.Stacks(ctx, api.Query{})
	if err != nil {
		return "", nil, fmt.Errorf("list the stacks: %w", err)
	}
	services, _, err := h.c.Services(ctx, api.ServiceFilter{}, api.Query{})
	if err != nil {
		return "", nil, fmt.Errorf("list the services: %w", err)
	}
	type count struct{ running, desired uint64 }
	counts := map[string]count{}
	for _, s := range services {
		c := counts[s.Stack]
		counts[s.Stack] = count{c.running + s.Running, c.desired + s.Desired}
	}
	p := overviewPage{Sources: sources}
	for _, st := range stacks {
		c := counts[st.Name]
		p.Stacks = append(p.Stacks, stackRow{StackSummary: st, Running: c.running, Desired: c.desired})
	}
	return "Overview", p, nil
}

// sourcePage is /ui/sources/NAME.
type sourcePage struct {
	*api.SourceInfo
	// History is newest first.
	History []model.SyncRecord
	// Pending is the revision a sync would apply when it is not the applied one.
	Pending string
	// Plan is `berth diff --source`'s text when the source is out of sync or has a
	// newer revision; PlanError why it could not be made.
	Plan, PlanError string
	Planned         bool
}

func (h *handler) source(r *http.Request) (string, any, error) {
	name := r.PathValue("name")
	src, _, err := h.c.Source(r.Context(), name, api.Query{})
	if err != nil {
		return "", nil, err
	}
	p := sourcePage{SourceInfo: src, History: slices.Clone(src.History), Pending: pendingRevision(src.Source)}
	slices.Reverse(p.History)
	if src.Display == api.SourceOutOfSync || p.Pending != "" {
		p.Planned = true
		plan, err := h.c.Plan(r.Context(), &api.PlanRequest{Source: name})
		if err != nil {
			p.PlanError = err.Error()
		} else {
			var b strings.Builder
			plantext.Plan(&b, plan, maxPlacementLines)
			p.Plan = b.String()
		}
	}
	return "Source " + name, p, nil
}

// pendingRevision is the revision fetched or pushed that no sync applied yet.
func pendingRevision(s *model.Source) string {
	latest := cmp.Or(s.PushedRevision, s.LastFetchedRevision)
	if latest == "" || latest == s.LastAppliedRevision {
		return ""
	}
	return latest
}

// stackPage is /ui/stacks/NAME.
type stackPage struct {
	Name     string
	Summary  *api.StackSummary
	Services []*api.ServiceStatus
}

func (h *handler) stack(r *http.Request) (string, any, error) {
	ctx := r.Context()
	name := r.PathValue("name")
	stacks, _, err := h.c.Stacks(ctx, api.Query{})
	if err != nil {
		return "", nil, fmt.Errorf("list the stacks: %w", err)
	}
	i := slices.IndexFunc(stacks, func(s *api.StackSummary) bool { return s.Name == name })
	if i < 0 {
		return "", nil, notFound("stack", name)
	}
	services, _, err := h.c.Services(ctx, api.ServiceFilter{Stack: name}, api.Query{})
	if err != nil {
		return "", nil, fmt.Errorf("list the services of stack %s: %w", name, err)
	}
	return "Stack " + name, stackPage{Name: name, Summary: stacks[i], Services: services}, nil
}

// servicePage is /ui/services/NAME.
type servicePage struct {
	*api.ServiceStatus
	Slots []slot
}

// slot is a replica's tasks (a global service's node's): the newest first, then the
// ones it replaced.
type slot struct {
	Current *api.TaskInfo
	History []*api.TaskInfo
}

func (h *handler) service(r *http.Request) (string, any, error) {
	ctx := r.Context()
	name := r.PathValue("name")
	svc, _, err := h.c.Service(ctx, name, api.Query{})
	if err != nil {
		return "", nil, err
	}
	tasks, _, err := h.c.Tasks(ctx, api.TaskFilter{Service: svc.ID}, api.Query{})
	if err != nil {
		return "", nil, fmt.Errorf("list the tasks of service %s: %w", svc.Name, err)
	}
	return "Service " + svc.Name, servicePage{ServiceStatus: svc, Slots: slots(tasks)}, nil
}

// slots groups tasks by slot (by node for global ones), in slot order.
func slots(tasks []*api.TaskInfo) []slot {
	tasks = slices.Clone(tasks)
	slices.SortStableFunc(tasks, func(a, b *api.TaskInfo) int {
		return cmp.Or(cmp.Compare(a.Slot, b.Slot), strings.Compare(slotNode(a), slotNode(b)), b.CreatedAt.Compare(a.CreatedAt))
	})
	var out []slot
	for i, t := range tasks {
		if i > 0 && t.Slot == tasks[i-1].Slot && slotNode(t) == slotNode(tasks[i-1]) {
			out[len(out)-1].History = append(out[len(out)-1].History, t)
			continue
		}
		out = append(out, slot{Current: t})
	}
	return out
}

// slotNode is what tells a global service's slots apart.
func slotNode(t *api.TaskInfo) string {
	if t.Slot != 0 {
		return ""
	}
	return t.NodeID
}

// nodesPage is /ui/nodes.
type nodesPage struct {
	Nodes []nodeRow
}

type nodeRow struct {
	*model.Node
	Running int
}

func (h *handler) nodes(r *http.Request) (string, any, error) {
	ctx := r.Context()
	nodes, _, err := h.c.Nodes(ctx, api.Query{})
	if err != nil {
		return "", nil, fmt.Errorf("list the nodes: %w", err)
	}
	tasks, _, err := h.c.Tasks(ctx, api.TaskFilter{}, api.Query{})
	if err != nil {
		return "", nil, fmt.Errorf("list the tasks: %w", err)
	}
	running := map[string]int{}
	for _, t := range tasks {
		if t.Status.State == model.TaskRunning {
			running[t.NodeID]++
		}
	}
	p := nodesPage{}
	for _, n := range nodes {
		p.Nodes = append(p.Nodes, nodeRow{Node: n, Running: running[n.ID]})
	}
	return "Nodes", p, nil
}

// nodePage is /ui/nodes/NAME.
type nodePage struct {
	*model.Node
	Tasks    []*api.TaskInfo
	Networks []networkView
	// NetworkError says why the networks could not be shown.
	NetworkError string
}

// networkView is one network of the node's tasks with every task on it, whichever
// node runs it.
type networkView struct {
	*model.Network
	Endpoints []endpoint
}

type endpoint struct {
	api.NetworkEndpoint
	Task, Service, Node string
	Here                bool
}

func (h *handler) node(r *http.Request) (string, any, error) {
	ctx := r.Context()
	n, _, err := h.c.Node(ctx, r.PathValue("name"), api.Query{})
	if err != nil {
		return "", nil, err
	}
	tasks, _, err := h.c.Tasks(ctx, api.TaskFilter{}, api.Query{})
	if err != nil {
		return "", nil, fmt.Errorf("list the tasks: %w", err)
	}
	nodes, _, err := h.c.Nodes(ctx, api.Query{})
	if err != nil {
		return "", nil, fmt.Errorf("list the nodes: %w", err)
	}
	p := nodePage{Node: n}
	for _, t := range tasks {
		if t.NodeID == n.ID {
			p.Tasks = append(p.Tasks, t)
		}
	}
	nv, _, err := h.c.NodeNetworkView(ctx, n.ID, api.Query{Wait: networkWait})
	if err != nil {
		p.NetworkError = err.Error()
	} else {
		p.Networks = networks(nv, n.ID, tasks, nodes)
	}
	return "Node " + n.Hostname, p, nil
}

// networks names what a network view holds by IDs: tasks, services and nodes.
func networks(nv *api.NetworkView, nodeID string, tasks []*api.TaskInfo, nodes []*model.Node) []networkView {
	taskNames := make(map[string]string, len(tasks))
	for _, t := range tasks {
		taskNames[t.ID] = t.Name
	}
	nodeNames := make(map[string]string, len(nodes))
	for _, n := range nodes {
		nodeNames[n.ID] = n.Hostname
	}
	services := make(map[string]string, len(nv.Services))
	for _, s := range nv.Services {
		services[s.ID] = s.Name
	}
	byNet := map[string][]endpoint{}
	for _, e := range nv.Endpoints {
		if e.TaskID == "" {
			continue
		}
		byNet[e.Network] = append(byNet[e.Network], endpoint{NetworkEndpoint: e, Task: cmp.Or(taskNames[e.TaskID], e.TaskID),
			Service: services[e.ServiceID], Node: cmp.Or(nodeNames[e.NodeID], e.NodeID), Here: e.NodeID == nodeID})
	}
	out := make([]networkView, 0, len(nv.Networks))
	for _, n := range nv.Networks {
		eps := byNet[n.ID]
		slices.SortFunc(eps, func(a, b endpoint) int {
			return cmp.Or(strings.Compare(a.Node, b.Node), strings.Compare(a.Task, b.Task))
		})
		out = append(out, networkView{Network: n, Endpoints: eps})
	}
	slices.SortFunc(out, func(a, b networkView) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// notFoundError is a page's object that does not exist.
type notFoundError struct{ kind, name string }

func notFound(kind, name string) error { return &notFoundError{kind, name} }

func (e *notFoundError) Error() string {
	return fmt.Sprintf("no such %s: %s (the overview lists them)", e.kind, e.name)
}
