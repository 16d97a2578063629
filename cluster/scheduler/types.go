package scheduler

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// Defaults for the recent-failure ranking, used when the Request leaves them zero.
const (
	// DefaultFailureThreshold is how many failures of one service version on a node
	// make the node a last resort for that version.
	DefaultFailureThreshold = 3
	// DefaultFailureWindow is how far back failures count.
	DefaultFailureWindow = 5 * time.Minute
)

// Resources is an amount of CPU and memory.
type Resources struct {
	NanoCPUs    spec.NanoCPUs
	MemoryBytes int64
}

// HostPort is a port published in host mode, which only one task per node can hold.
type HostPort struct {
	Protocol string // tcp, udp or sctp
	Port     uint32
}

func (p HostPort) String() string { return strconv.FormatUint(uint64(p.Port), 10) + "/" + p.Protocol }

// Failure is one failed (or rejected) task of a service version on a node.
type Failure struct {
	ServiceID   string
	SpecVersion uint64
	At          time.Time
}

// NodeInfo is what the scheduler knows of one node: its description from the Node row
// and what the tasks already assigned to it use. The caller owns it; Schedule only
// reads it, and Apply records a Result's assignments in it so that the next service
// scheduled from the same slice sees them.
type NodeInfo struct {
	ID           string
	Hostname     string
	Role         model.NodeRole
	State        model.NodeState // only NodeReady nodes take tasks
	Availability model.NodeAvailability
	Labels       map[string]string // operator labels (node.labels.*)
	EngineLabels map[string]string // agent-reported labels (engine.labels.*)
	Platform     model.Platform
	// Addr is the node's IP address, for node.ip constraints; the zero Addr matches
	// no address or CIDR.
	Addr netip.Addr

	// Total is what the node offers; Reserved is what its tasks reserve.
	Total    Resources
	Reserved Resources
	// ServiceTasks counts the node's active tasks per service ID, and Tasks all of
	// them: the counts behind max_replicas_per_node and the ranking.
	ServiceTasks map[string]int
	Tasks        int
	// HostPorts counts the tasks holding each host-mode published port.
	HostPorts map[HostPort]int
	// Failures lists failed tasks on the node; only those of the requested service
	// version within the failure window matter, so older ones may stay.
	Failures []Failure
}

// Request asks for tasks of one service to be placed.
type Request struct {
	ServiceID string
	// Service is the canonical spec (validated by package spec); nil places without
	// constraints, reservations or ports.
	Service     *spec.Service
	SpecVersion uint64
	// Replicas is the number of new tasks to place (Schedule only).
	Replicas int
	// Platforms are the platforms the service's image exists for. The spec has no
	// such field: the caller derives it from the image index when it knows it. Empty
	// means any platform. An empty OS or Arch in an entry matches any.
	Platforms []model.Platform
	// FailureThreshold and FailureWindow tune the recent-failure ranking; zero means
	// DefaultFailureThreshold and DefaultFailureWindow.
	FailureThreshold int
	FailureWindow    time.Duration
	// Avoid lists nodes ranked last, like a node past the failure threshold: the
	// orchestrator names those where the tasks being placed have just failed, so a
	// replacement goes elsewhere while another node qualifies. A preference, not a
	// filter: an avoided node still takes a task when no other can.
	Avoid []string
}

// Assignment places the new task with index Task (0 <= Task < Request.Replicas) on a
// node.
type Assignment struct {
	Task   int
	NodeID string
	// Node is the node's index in the slice given to Schedule.
	Node int
}

// Result is the outcome of Schedule. Assignments are in task order: the first
// len(Assignments) tasks are placed, the last Unplaced stay pending with Reason.
type Result struct {
	Assignments []Assignment
	Unplaced    int
	Reason      string
}
