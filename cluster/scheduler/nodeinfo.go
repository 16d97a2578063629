package scheduler

import (
	"net/netip"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// ServiceLookup returns the spec of a service by ID, or nil when it is unknown. The
// builders use it to find what a task reserves and publishes; the current spec stands
// in for the version a task was made from, which is close enough for tasks that an
// update is about to replace.
type ServiceLookup func(serviceID string) *spec.Service

// NodeInfoFromState builds the NodeInfo of one node from its row and the tasks
// assigned to it (tasks of other nodes are skipped).
func NodeInfoFromState(n *model.Node, tasks []*model.Task, services ServiceLookup) NodeInfo {
	info := nodeInfoFromRow(n)
	for _, t := range tasks {
		if t.NodeID == n.ID {
			info.addStateTask(t, services)
		}
	}
	return info
}

// NodeInfosFromState builds one NodeInfo per node, in the order of nodes, in a single
// pass over all tasks; tasks of nodes not in the list are skipped.
func NodeInfosFromState(nodes []*model.Node, tasks []*model.Task, services ServiceLookup) []NodeInfo {
	out := make([]NodeInfo, len(nodes))
	byID := make(map[string]int, len(nodes))
	for i, n := range nodes {
		out[i] = nodeInfoFromRow(n)
		byID[n.ID] = i
	}
	for _, t := range tasks {
		if i, ok := byID[t.NodeID]; ok && t.NodeID != "" {
			out[i].addStateTask(t, services)
		}
	}
	return out
}

func nodeInfoFromRow(n *model.Node) NodeInfo {
	return NodeInfo{
		ID:           n.ID,
		Hostname:     n.Hostname,
		Role:         n.Role,
		State:        n.Status.State,
		Availability: n.Availability,
		Labels:       n.Labels,
		EngineLabels: n.EngineLabels,
		Platform:     n.Platform,
		Addr:         parseNodeAddr(n.Addr),
		Total:        Resources{NanoCPUs: n.Resources.NanoCPUs, MemoryBytes: n.Resources.MemoryBytes},
	}
}

// parseNodeAddr accepts "ip" and "ip:port" (the row holds whatever the agent
// advertised); a host name yields the zero Addr, which no node.ip constraint matches.
func parseNodeAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().WithZone("").Unmap()
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.WithZone("").Unmap()
	}
	return netip.Addr{}
}

// AddTask accounts for one more task of the node, as NodeInfosFromState does: the
// leader keeps its NodeInfos up to date from the state's changes with AddTask and
// RemoveTask instead of rebuilding them from every task after each write. services
// must answer the same for a task's RemoveTask as it did for its AddTask.
func (n *NodeInfo) AddTask(t *model.Task, services ServiceLookup) { n.addStateTask(t, services) }

// RemoveTask undoes AddTask for the same task row.
func (n *NodeInfo) RemoveTask(t *model.Task, services ServiceLookup) {
	switch t.Status.State {
	case model.TaskFailed, model.TaskRejected:
		at := t.Status.Timestamp
		if at.IsZero() {
			at = t.UpdatedAt
		}
		for i, f := range n.Failures {
			if f.ServiceID == t.ServiceID && f.SpecVersion == t.SpecVersion && f.At.Equal(at) {
				n.Failures = append(n.Failures[:i:i], n.Failures[i+1:]...)
				break
			}
		}
		return
	}
	if t.Status.State.Compare(model.TaskAssigned) < 0 || t.Status.State.Compare(model.TaskRunning) > 0 {
		return
	}
	var svc *spec.Service
	if services != nil {
		svc = services(t.ServiceID)
	}
	active := t.DesiredState.Compare(model.TaskComplete) <= 0
	n.removeTask(t.ServiceID, reservations(svc), hostPorts(svc), active)
}

func (n *NodeInfo) removeTask(serviceID string, need Resources, ports []HostPort, active bool) {
	n.Reserved.NanoCPUs -= need.NanoCPUs
	n.Reserved.MemoryBytes -= need.MemoryBytes
	for _, p := range ports {
		if n.HostPorts[p]--; n.HostPorts[p] <= 0 {
			delete(n.HostPorts, p)
		}
	}
	if active {
		if n.ServiceTasks[serviceID]--; n.ServiceTasks[serviceID] <= 0 {
			delete(n.ServiceTasks, serviceID)
		}
		n.Tasks--
	}
}

// addStateTask accounts for one task of the node, as Swarm does: a task holds its
// reservations and ports from assignment until it stops running, and counts as active
// (for max_replicas_per_node and the ranking) while it is also still meant to run, so
// that a task being shut down for an update does not block its replacement. Failed
// and rejected tasks are remembered for the recent-failure ranking.
func (n *NodeInfo) addStateTask(t *model.Task, services ServiceLookup) {
	switch t.Status.State {
	case model.TaskFailed, model.TaskRejected:
		at := t.Status.Timestamp
		if at.IsZero() {
			at = t.UpdatedAt
		}
		n.Failures = append(n.Failures, Failure{ServiceID: t.ServiceID, SpecVersion: t.SpecVersion, At: at})
		return
	}
	if t.Status.State.Compare(model.TaskAssigned) < 0 || t.Status.State.Compare(model.TaskRunning) > 0 {
		return
	}
	var svc *spec.Service
	if services != nil {
		svc = services(t.ServiceID)
	}
	active := t.DesiredState.Compare(model.TaskComplete) <= 0
	n.addTask(t.ServiceID, reservations(svc), hostPorts(svc), active)
}

func (n *NodeInfo) addTask(serviceID string, need Resources, ports []HostPort, active bool) {
	n.Reserved.NanoCPUs += need.NanoCPUs
	n.Reserved.MemoryBytes += need.MemoryBytes
	if len(ports) > 0 {
		if n.HostPorts == nil {
			n.HostPorts = make(map[HostPort]int, len(ports))
		}
		for _, p := range ports {
			n.HostPorts[p]++
		}
	}
	if active {
		if n.ServiceTasks == nil {
			n.ServiceTasks = make(map[string]int)
		}
		n.ServiceTasks[serviceID]++
		n.Tasks++
	}
}

// Apply records res's assignments in nodes (the slice res was computed from), so that
// a following Schedule call on the same slice sees the new tasks' counts, reservations
// and ports. It writes to the NodeInfos' maps, creating them when nil.
func Apply(nodes []NodeInfo, req Request, res Result) {
	need, ports := reservations(req.Service), hostPorts(req.Service)
	for _, a := range res.Assignments {
		i := a.Node
		if i < 0 || i >= len(nodes) || nodes[i].ID != a.NodeID {
			// The slice was reordered since Schedule: find the node by ID instead.
			i = -1
			for j := range nodes {
				if nodes[j].ID == a.NodeID {
					i = j
					break
				}
			}
			if i < 0 {
				continue
			}
		}
		nodes[i].addTask(req.ServiceID, need, ports, true)
	}
}

// reservations is what one task of svc reserves.
func reservations(svc *spec.Service) Resources {
	if svc == nil || svc.Deploy.Resources.Reservations == nil {
		return Resources{}
	}
	r := svc.Deploy.Resources.Reservations
	return Resources{NanoCPUs: r.CPUs, MemoryBytes: r.MemoryBytes}
}

// hostPorts lists the ports svc publishes in host mode. A host-mode port without a
// published number gets a port chosen by the node, so it cannot conflict.
func hostPorts(svc *spec.Service) []HostPort {
	if svc == nil {
		return nil
	}
	var out []HostPort
	for _, p := range svc.Ports {
		if p.Mode == spec.PortModeHost && p.Published != 0 {
			proto := p.Protocol
			if proto == "" {
				proto = "tcp"
			}
			out = append(out, HostPort{Protocol: proto, Port: p.Published})
		}
	}
	return out
}
