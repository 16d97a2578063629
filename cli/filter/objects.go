package filter

import (
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// The keys each listing takes, Docker's.
var (
	ServiceKeys = []string{"id", "label", "mode", "name"}
	TaskKeys    = []string{"desired-state", "id", "name", "node"}
	NodeKeys    = []string{"id", "label", "membership", "name", "node.label", "role"}
)

// ParseServices reads the --filter flags of a service listing.
func ParseServices(flags []string) (Args, error) {
	a, err := Parse(flags, ServiceKeys...)
	if err != nil {
		return nil, err
	}
	return a, a.CheckValues("mode", spec.ModeReplicated, spec.ModeGlobal, spec.ModeReplicatedJob, spec.ModeGlobalJob)
}

// ParseTasks reads the --filter flags of a task listing.
func ParseTasks(flags []string) (Args, error) {
	a, err := Parse(flags, TaskKeys...)
	if err != nil {
		return nil, err
	}
	return a, a.CheckValues("desired-state", string(model.TaskRunning), string(model.TaskShutdown),
		string(model.TaskAccepted), string(model.TaskComplete), string(model.TaskRemove))
}

// ParseNodes reads the --filter flags of a node listing.
func ParseNodes(flags []string) (Args, error) {
	a, err := Parse(flags, NodeKeys...)
	if err != nil {
		return nil, err
	}
	if err := a.CheckValues("role", string(model.RoleManager), string(model.RoleWorker)); err != nil {
		return nil, err
	}
	return a, a.CheckValues("membership", "accepted", "pending")
}

// Services is the services that pass a: id and name by prefix, label on the
// service's (deploy) labels, mode exactly.
func Services(a Args, svcs []*api.ServiceStatus) []*api.ServiceStatus {
	return Keep(svcs, func(s *api.ServiceStatus) bool {
		mode := s.Spec.Deploy.Mode
		if mode == "" {
			mode = spec.ModeReplicated
		}
		return a.Match("id", Prefix(s.ID)) && a.Match("name", Prefix(s.Name)) &&
			a.Match("label", Labels(s.Spec.Deploy.Labels)) && a.Match("mode", Equal(mode))
	})
}

// Tasks is the tasks that pass a: id and name by prefix, node by ID or hostname,
// desired-state exactly.
func Tasks(a Args, tasks []*api.TaskInfo) []*api.TaskInfo {
	return Keep(tasks, func(t *api.TaskInfo) bool {
		return a.Match("id", Prefix(t.ID)) && a.Match("name", Prefix(t.Name)) &&
			a.Match("node", func(v string) bool { return v == t.NodeID || v == t.NodeHostname }) &&
			a.Match("desired-state", Equal(string(t.DesiredState)))
	})
}

// Nodes is the nodes that pass a: id and name (hostname) by prefix, role exactly,
// label on the labels the agent reports (engine labels) and node.label on the
// operator's, as Docker's. Every berth node is an accepted member: joining takes a
// token, there is no pending state.
func Nodes(a Args, nodes []*model.Node) []*model.Node {
	return Keep(nodes, func(n *model.Node) bool {
		return a.Match("id", Prefix(n.ID)) && a.Match("name", Prefix(n.Hostname)) &&
			a.Match("role", Equal(string(n.Role))) && a.Match("membership", Equal("accepted")) &&
			a.Match("label", Labels(n.EngineLabels)) && a.Match("node.label", Labels(n.Labels))
	})
}
