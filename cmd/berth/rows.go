package main

import (
	"io"
	"strconv"
	"time"

	"github.com/berthd/berth/cli/format"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
)

// The fields of each listing's rows under --format, with Docker's names and headers,
// so that a template or a JSON consumer written for docker reads berth's rows.
var (
	serviceColumns = []format.Column{{Field: "ID", Header: "ID"}, {Field: "Name", Header: "NAME"},
		{Field: "Mode", Header: "MODE"}, {Field: "Replicas", Header: "REPLICAS"},
		{Field: "Image", Header: "IMAGE"}, {Field: "Ports", Header: "PORTS"}}
	taskColumns = []format.Column{{Field: "ID", Header: "ID"}, {Field: "Name", Header: "NAME"},
		{Field: "Image", Header: "IMAGE"}, {Field: "Node", Header: "NODE"},
		{Field: "DesiredState", Header: "DESIRED STATE"}, {Field: "CurrentState", Header: "CURRENT STATE"},
		{Field: "Error", Header: "ERROR"}}
	nodeColumns = []format.Column{{Field: "ID", Header: "ID"}, {Field: "Self", Header: ""},
		{Field: "Hostname", Header: "HOSTNAME"}, {Field: "Status", Header: "STATUS"},
		{Field: "Availability", Header: "AVAILABILITY"}, {Field: "ManagerStatus", Header: "MANAGER STATUS"}}
	stackColumns  = []format.Column{{Field: "Name", Header: "NAME"}, {Field: "Services", Header: "SERVICES"}}
	sourceColumns = []format.Column{{Field: "Name", Header: "NAME"}, {Field: "Kind", Header: "KIND"},
		{Field: "Revision", Header: "REVISION"}, {Field: "Status", Header: "STATUS"},
		{Field: "LastSync", Header: "LAST SYNC"}, {Field: "Message", Header: "MESSAGE"}}
)

func serviceListing(noTrunc bool) listing[*api.ServiceStatus] {
	return listing[*api.ServiceStatus]{
		id:    func(s *api.ServiceStatus) string { return shortID(s.ID, noTrunc) },
		cols:  serviceColumns,
		row:   func(s *api.ServiceStatus) format.Row { return serviceFields(s, noTrunc) },
		table: func(w io.Writer, svcs []*api.ServiceStatus) error { return printServices(w, svcs, noTrunc) },
	}
}

// nodeListing prints node IDs whole, as Docker's `node ls` does; self is the ID of
// the node the CLI talks to.
func nodeListing(self string) listing[*model.Node] {
	return listing[*model.Node]{
		id:    func(n *model.Node) string { return n.ID },
		cols:  nodeColumns,
		row:   func(n *model.Node) format.Row { return nodeFields(n, self) },
		table: func(w io.Writer, nodes []*model.Node) error { return printNodes(w, nodes, self) },
	}
}

func sourceListing(now time.Time) listing[*api.SourceInfo] {
	return listing[*api.SourceInfo]{
		id:    func(s *api.SourceInfo) string { return s.Name },
		cols:  sourceColumns,
		row:   func(s *api.SourceInfo) format.Row { return sourceFields(s, now) },
		table: func(w io.Writer, srcs []*api.SourceInfo) error { return printSources(w, srcs, now) },
	}
}

func stackListing() listing[*api.StackSummary] {
	return listing[*api.StackSummary]{
		id:    func(s *api.StackSummary) string { return s.Name },
		cols:  stackColumns,
		row:   stackFields,
		table: printStacks,
	}
}

// maxErrorLength is where `service ps` cuts a task's error without --no-trunc, as
// Docker does: the whole text is in --no-trunc and --format json.
const maxErrorLength = 30

func serviceFields(s *api.ServiceStatus, noTrunc bool) format.Row {
	return format.Row{"ID": shortID(s.ID, noTrunc), "Name": s.Name, "Mode": modeText(s.Spec.Deploy.Mode),
		"Replicas": replicasText(s), "Image": s.Spec.Image, "Ports": portsText(s.Spec.Ports)}
}

// taskRows are the rows of `service ps --format`: every task (no folding of repeated
// failures), history indented under its slot's current task in a table, as Docker's.
func taskRows(tasks []*api.TaskInfo, f format.Format, noTrunc bool, now time.Time) []format.Row {
	rows := make([]format.Row, 0, len(tasks))
	prev := ""
	for _, t := range tasks {
		name, group := t.Name, taskGroup(t)
		if group == prev && f.Kind() == format.Table {
			name = " \\_ " + name
		}
		prev = group
		rows = append(rows, format.Row{"ID": shortID(t.ID, noTrunc), "Name": name, "Image": t.Image,
			"Node": t.NodeHostname, "DesiredState": title(string(t.DesiredState)),
			"CurrentState": currentState(t.Status, now), "Error": taskError(t.Status.Err, noTrunc)})
	}
	return rows
}

// taskGroup is the slot a task fills: its service's slot, or for a global service
// its node.
func taskGroup(t *api.TaskInfo) string {
	group := t.ServiceID + "/" + strconv.FormatUint(t.Slot, 10)
	if t.Slot == 0 {
		group += "/" + t.NodeID
	}
	return group
}

// taskError is the ERROR cell: quoted, and cut as Docker cuts it unless noTrunc.
func taskError(err string, noTrunc bool) string {
	if err == "" {
		return ""
	}
	if !noTrunc {
		err = format.Ellipsis(err, maxErrorLength)
	}
	return strconv.Quote(err)
}

func nodeFields(n *model.Node, self string) format.Row {
	return format.Row{"ID": n.ID, "Self": n.ID == self, "Hostname": n.Hostname, "Status": title(string(n.Status.State)),
		"Availability": title(string(n.Availability)), "ManagerStatus": managerStatusText(n)}
}

// managerStatusText is Leader, Reachable or Unreachable for a manager, empty for a worker.
func managerStatusText(n *model.Node) string {
	if n.ManagerStatus == nil {
		return ""
	}
	return title(string(n.ManagerStatus.Reachability))
}

func stackFields(s *api.StackSummary) format.Row {
	return format.Row{"Name": s.Name, "Services": strconv.Itoa(s.Services)}
}
