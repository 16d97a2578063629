package command

import (
	"errors"
	"fmt"

	"github.com/berthd/berth/cluster/model"
)

// Version is the replicated protocol this build speaks: the command types it can
// apply and the row shapes it writes. It grows by one with every release that adds a
// command type or a stored field that changes what a manager does, never otherwise.
//
//	1: the commands up to object-remove (35).
//	2: managers report their protocol in their node row (model.Node's Engine), and a
//	   manager stops on a command it does not know instead of skipping it; root CA
//	   rotation (37, 38), leader records (39) and refused pushes (40).
const Version = 2

// since says in which protocol version each command type appeared. It is the one
// place a new command registers: the leader proposes a command only once every
// manager speaks its version (CheckProtocol), so that no manager meets it in its log
// before it can apply it.
var since = map[Type]int{
	CmdClusterUpsert:      1,
	CmdNodeUpsert:         1,
	CmdNodeRemove:         1,
	CmdNodeUpdate:         1,
	CmdNodeStatus:         1,
	CmdSecretUpsert:       1,
	CmdConfigUpsert:       1,
	CmdClusterUpdate:      1,
	CmdStackDeploy:        1,
	CmdStackRemove:        1,
	CmdServiceScale:       1,
	CmdServiceForceUpdate: 1,
	CmdServiceRollback:    1,
	CmdPlanApply:          1,
	CmdTaskStatus:         1,
	CmdSourceAdd:          1,
	CmdSourceUpdate:       1,
	CmdSourceRemove:       1,
	CmdSourceSync:         1,
	CmdSourcePush:         1,
	CmdServiceEndpoints:   1,
	CmdServiceCreate:      1,
	CmdServiceUpdate:      1,
	CmdServiceRemove:      1,
	CmdObjectRemove:       1,
	CmdCARotate:           2,
	CmdNodeCert:           2,
	CmdLeaderElected:      2,
	CmdSourcePushRejected: 2,
}

// Since is the protocol version in which t appeared; a type this build does not know
// needs a protocol above its own.
func (t Type) Since() int {
	if v, ok := since[t]; ok {
		return v
	}
	return Version + 1
}

// ErrProtocol is the leader's refusal of a command that a manager of the cluster
// runs too old a berth to apply.
var ErrProtocol = errors.New("a manager runs an older berth")

// Manager is a manager as the protocol gate sees it. Protocol 0 means the manager
// never said, which only a berth of protocol 1 does.
type Manager struct {
	Name     string
	Berth    string
	Protocol int
}

// ManagerOf is the manager a node row records, as the gate sees it.
func ManagerOf(nd *model.Node) Manager {
	return Manager{Name: nd.Hostname, Berth: nd.Engine.Version, Protocol: nd.Engine.Protocol}
}

// Speaks is the protocol the manager speaks.
func (m Manager) Speaks() int { return max(m.Protocol, 1) }

// CheckProtocol refuses a command of type t when a manager speaks a protocol older
// than the one t appeared in: it names the first such manager.
func CheckProtocol(t Type, managers []Manager) error {
	return CheckSince(t.Since(), t.String(), managers)
}

// CheckSince refuses verb, which appeared in protocol need (a setting of an existing
// command, say), when a manager speaks an older protocol: it names the first such
// manager.
func CheckSince(need int, verb string, managers []Manager) error {
	for _, m := range managers {
		if m.Speaks() < need {
			return &ProtocolError{Manager: m, Verb: verb, Need: need}
		}
	}
	return nil
}

// ProtocolError is CheckProtocol's refusal: Manager speaks an older protocol than
// Need, the one of the command Verb.
type ProtocolError struct {
	Manager Manager
	Verb    string
	Need    int
}

func (e *ProtocolError) Error() string {
	build := "an older berth"
	if e.Manager.Berth != "" {
		build = "berth " + e.Manager.Berth
	}
	return fmt.Sprintf("manager %s runs %s (protocol %d); upgrade every manager before using %s (protocol %d)",
		e.Manager.Name, build, e.Manager.Speaks(), e.Verb, e.Need)
}

func (e *ProtocolError) Unwrap() error { return ErrProtocol }

// UnknownEntryError is a raft entry of a command type this build does not know: the
// manager must stop applying rather than skip it and diverge from the others.
type UnknownEntryError struct {
	Index uint64
	Type  Type
}

func (e *UnknownEntryError) Error() string {
	return fmt.Sprintf("raft entry %d is command %d, which this berth (protocol %d) does not know: upgrade this manager's binary",
		e.Index, uint8(e.Type), Version)
}

func (e *UnknownEntryError) Unwrap() error { return ErrUnknown }
