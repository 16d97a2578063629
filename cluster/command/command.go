package command

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// CommandType is the first byte of every raft entry berth writes. Values are never
// reused: a log written by one version must apply the same way in every later one.
type Type uint8

const (
	CmdClusterUpsert Type = 1
	CmdNodeUpsert    Type = 2
	CmdNodeRemove    Type = 3
	CmdNodeUpdate    Type = 4
	CmdNodeStatus    Type = 5
	CmdSecretUpsert  Type = 6
	CmdConfigUpsert  Type = 7
	CmdClusterUpdate Type = 8
	// Issue 4: stacks, services and the orchestrator's decisions.
	CmdStackDeploy        Type = 9
	CmdStackRemove        Type = 10
	CmdServiceScale       Type = 11
	CmdServiceForceUpdate Type = 12
	CmdServiceRollback    Type = 13
	CmdPlanApply          Type = 14
	CmdTaskStatus         Type = 15
	// Issue 6: GitOps sources.
	CmdSourceAdd    Type = 16
	CmdSourceUpdate Type = 17
	CmdSourceRemove Type = 18
	CmdSourceSync   Type = 19
	// Issue 15: a push is replicated before it is acknowledged.
	CmdSourcePush Type = 30
	// Issue 16: VIPs for services written before they existed.
	CmdServiceEndpoints Type = 31
	// Issue 19: the imperative service verbs.
	CmdServiceCreate Type = 32
	CmdServiceUpdate Type = 33
	CmdServiceRemove Type = 34
	// Issue 19: `berth secret rm`, `berth config rm`.
	CmdObjectRemove Type = 35
	// Issue 20: root CA rotation, and which root each node's certificate chains to.
	CmdCARotate Type = 37
	CmdNodeCert Type = 38
	// Issue 20: events a manager's state changes alone would not tell.
	CmdLeaderElected      Type = 39
	CmdSourcePushRejected Type = 40
)

func (t Type) String() string {
	if c, ok := commands[t]; ok {
		return c.name
	}
	return fmt.Sprintf("command(%d)", uint8(t))
}

// ErrUnknownCommand is what a manager answers for a command type it does not know, which
// means it runs an older berth than the manager that proposed the command.
var ErrUnknown = errors.New("unknown raft command type")

// Command bodies. Everything non-deterministic (ids, times, random secrets) is decided by
// the proposer and carried here, so every manager applies the same bytes the same way.
type (
	// NodeRemove deletes a node record.
	NodeRemove struct {
		ID string `json:"id"`
	}
	// NodeUpdate changes what an operator may change on a node. Role is set by
	// `node promote|demote`.
	NodeUpdate struct {
		ID           string                 `json:"id"`
		LabelsAdd    map[string]string      `json:"labels_add,omitempty"`
		LabelsRemove []string               `json:"labels_remove,omitempty"`
		Availability model.NodeAvailability `json:"availability,omitempty"`
		Role         model.NodeRole         `json:"role,omitempty"`
	}
	// ClusterUpdate replaces the cluster row if it is still the one the proposer
	// read (compare and swap on its modify index): two managers rotating the
	// unlock key or a join token at once must not both believe they won, since
	// one of them would hand out a key that no longer unlocks anything.
	ClusterUpdate struct {
		ExpectModifyIndex uint64         `json:"expect_modify_index"`
		Cluster           *model.Cluster `json:"cluster"`
	}
	// NodeStatusUpdate records a status transition (ready <-> down), not a heartbeat,
	// and the berth the node runs when its heartbeat says another one (protocol 2).
	// A manager of protocol 1 ignores Engine: the gate reads a missing engine as
	// protocol 1, which is what it would have said.
	NodeStatusUpdate struct {
		ID     string           `json:"id"`
		Status model.NodeStatus `json:"status"`
		Engine model.NodeEngine `json:"engine,omitzero"`
	}
)

// command is one entry of the dispatch table: how to decode a body and apply it.
type command struct {
	name  string
	apply func(tx *state.WriteTxn, body []byte) error
}

// decodeWire returns an apply function that decodes a binary body (wire.go) into a
// fresh T first.
func decodeWire[T any, P interface {
	*T
	wireBody
}](apply func(tx *state.WriteTxn, v *T) error) func(*state.WriteTxn, []byte) error {
	return func(tx *state.WriteTxn, body []byte) error {
		v := P(new(T))
		d := newWireDecoder(body)
		v.decodeWire(d)
		if err := d.done(); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		return apply(tx, (*T)(v))
	}
}

// wireBody is a command body encoded in the binary form of wire.go.
type wireBody interface {
	encodeWire(e *wireEncoder)
	decodeWire(d *wireDecoder)
}

// decodeInto returns an apply function that decodes the body into a fresh T first.
func decodeInto[T any](apply func(tx *state.WriteTxn, v *T) error) func(*state.WriteTxn, []byte) error {
	return func(tx *state.WriteTxn, body []byte) error {
		v := new(T)
		if err := json.Unmarshal(body, v); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		return apply(tx, v)
	}
}

var commands = map[Type]command{
	CmdClusterUpsert: {"cluster-upsert", decodeInto(func(tx *state.WriteTxn, c *model.Cluster) error { return tx.UpsertCluster(c) })},
	CmdNodeUpsert:    {"node-upsert", decodeInto(applyNodeUpsert)},
	CmdNodeRemove:    {"node-remove", decodeInto(applyNodeRemove)},
	CmdNodeUpdate: {"node-update", decodeInto(func(tx *state.WriteTxn, u *NodeUpdate) error {
		if len(u.LabelsAdd) > 0 || len(u.LabelsRemove) > 0 {
			if err := tx.SetNodeLabels(u.ID, u.LabelsAdd, u.LabelsRemove); err != nil {
				return err
			}
		}
		if u.Availability != "" {
			if err := tx.SetNodeAvailability(u.ID, u.Availability); err != nil {
				return err
			}
		}
		if u.Role != "" {
			return tx.SetNodeRole(u.ID, u.Role)
		}
		return nil
	})},
	CmdNodeStatus: {"node-status", decodeInto(func(tx *state.WriteTxn, u *NodeStatusUpdate) error {
		if err := tx.SetNodeStatus(u.ID, u.Status); err != nil || u.Engine == (model.NodeEngine{}) {
			return err
		}
		return tx.SetNodeEngine(u.ID, u.Engine)
	})},
	CmdSecretUpsert: {"secret-upsert", decodeInto(func(tx *state.WriteTxn, s *model.Secret) error { return tx.UpsertSecret(s) })},
	CmdConfigUpsert: {"config-upsert", decodeInto(func(tx *state.WriteTxn, c *model.Config) error { return tx.UpsertConfig(c) })},
	CmdClusterUpdate: {"cluster-update", decodeInto(func(tx *state.WriteTxn, u *ClusterUpdate) error {
		cur, err := tx.Cluster(nil)
		if err != nil {
			return err
		}
		if cur.ModifyIndex != u.ExpectModifyIndex {
			return fmt.Errorf("cluster %s changed at index %d since it was read at index %d: %w",
				cur.ID, cur.ModifyIndex, u.ExpectModifyIndex, state.ErrConflict)
		}
		return tx.UpsertCluster(u.Cluster)
	})},
	CmdStackDeploy:        {"stack-deploy", decodeInto(applyStackDeploy)},
	CmdStackRemove:        {"stack-remove", decodeInto(applyStackRemove)},
	CmdServiceScale:       {"service-scale", decodeInto(applyServiceScale)},
	CmdServiceForceUpdate: {"service-force-update", decodeInto(applyServiceForceUpdate)},
	CmdServiceRollback:    {"service-rollback", decodeInto(applyServiceRollback)},
	CmdPlanApply:          {"plan-apply", decodeWire(applyPlans)},
	CmdTaskStatus:         {"task-status", decodeWire(applyTaskStatus)},
	CmdSourceAdd:          {"source-add", decodeInto(applySourceAdd)},
	CmdSourceUpdate:       {"source-update", decodeInto(applySourceUpdate)},
	CmdSourceRemove:       {"source-remove", decodeInto(applySourceRemove)},
	CmdSourceSync:         {"source-sync", decodeInto(applySourceSync)},
	CmdSourcePush:         {"source-push", decodeInto(applySourcePush)},
	CmdServiceEndpoints:   {"service-endpoints", decodeInto(applyServiceEndpoints)},
	CmdServiceCreate:      {"service-create", decodeInto(applyServiceCreate)},
	CmdServiceUpdate:      {"service-update", decodeInto(applyServiceUpdate)},
	CmdServiceRemove:      {"service-remove", decodeInto(applyServiceRemove)},
	CmdObjectRemove:       {"object-remove", decodeInto(applyObjectRemove)},
	CmdCARotate:           {"ca-rotate", decodeInto(applyCARotate)},
	CmdNodeCert:           {"node-cert", decodeInto(applyNodeCert)},
	CmdLeaderElected:      {"leader-elected", decodeInto(applyLeaderElected)},
	CmdSourcePushRejected: {"source-push-rejected", decodeInto(applySourcePushRejected)},
}

// Known reports whether this build can apply commands of type t.
func (t Type) Known() bool {
	_, ok := commands[t]
	return ok
}

// ApplyCommand applies one encoded command (the type byte, then the body) to tx: what
// the FSM does with every raft entry and a dry run with a forked state.
func Apply(tx *state.WriteTxn, data []byte) error {
	if len(data) == 0 {
		return fmt.Errorf("%w: empty entry", ErrUnknown)
	}
	c, ok := commands[Type(data[0])]
	if !ok {
		return fmt.Errorf("%w %d", ErrUnknown, data[0])
	}
	return c.apply(tx, data[1:])
}

// EncodeCommand makes a raft entry: the type byte, then the body as JSON, or in the
// binary form of wire.go for the bodies that have one (PlanApply, TaskStatusBatch).
func Encode(t Type, body any) ([]byte, error) {
	if _, ok := commands[t]; !ok {
		return nil, fmt.Errorf("%w %d", ErrUnknown, t)
	}
	if w, ok := body.(wireBody); ok {
		e := newWireEncoder(4096)
		w.encodeWire(e)
		return e.bytes([]byte{byte(t)}), nil
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", t, err)
	}
	return append([]byte{byte(t)}, b...), nil
}
