package state

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/berthd/berth/cluster/model"
	"github.com/hashicorp/go-memdb"
)

// ReadTxn is a consistent view of the store. Every read takes a watch set,
// which may be nil; reads add to it the channels that close when their answer
// changes.
//
// Rows returned are shared with the store and with every other reader: they
// must not be modified (see the package documentation). Getters return an
// error wrapping ErrNotFound when there is no such row. Listers return rows in
// a stable order, stated on each.
type ReadTxn struct {
	// txn is nil once a write transaction is committed or aborted, which turns
	// reads into ErrTxnClosed instead of memdb's nil dereference.
	txn *memdb.Txn
	// tasks is the task table as of the same commit as txn (a write
	// transaction's own copy, which its writes change).
	tasks *taskTable
	// store hands out the per-node watch channels of TasksByNode.
	store *Store
}

// key renders lookup arguments for error messages.
func key(args []any) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = fmt.Sprint(a)
	}
	return strings.Join(parts, "/")
}

func first[T any](r *ReadTxn, ws memdb.WatchSet, table, index string, args ...any) (*T, error) {
	if r.txn == nil {
		return nil, fmt.Errorf("state: %s %q: %w", table, key(args), ErrTxnClosed)
	}
	ch, raw, err := r.txn.FirstWatch(table, index, args...)
	if err != nil {
		return nil, fmt.Errorf("state: %s by %s %q: %w", table, index, key(args), err)
	}
	ws.Add(ch)
	if raw == nil {
		return nil, fmt.Errorf("state: %s %q: %w", table, key(args), ErrNotFound)
	}
	return raw.(*T), nil
}

func last[T any](r *ReadTxn, ws memdb.WatchSet, table, index string, args ...any) (*T, error) {
	if r.txn == nil {
		return nil, fmt.Errorf("state: %s %q: %w", table, key(args), ErrTxnClosed)
	}
	ch, raw, err := r.txn.LastWatch(table, index, args...)
	if err != nil {
		return nil, fmt.Errorf("state: %s by %s %q: %w", table, index, key(args), err)
	}
	ws.Add(ch)
	if raw == nil {
		return nil, fmt.Errorf("state: %s %q: %w", table, key(args), ErrNotFound)
	}
	return raw.(*T), nil
}

func list[T any](r *ReadTxn, ws memdb.WatchSet, table, index string, args ...any) ([]*T, error) {
	if r.txn == nil {
		return nil, fmt.Errorf("state: list %s: %w", table, ErrTxnClosed)
	}
	it, err := r.txn.Get(table, index, args...)
	if err != nil {
		return nil, fmt.Errorf("state: list %s by %s %q: %w", table, index, key(args), err)
	}
	ws.Add(it.WatchCh())
	var out []*T
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*T))
	}
	return out, nil
}

// Index returns the raft index of the last write to any of tables, or to any
// table when none is named; 0 if none was ever written (or the name is not a
// table).
func (r *ReadTxn) Index(tables ...string) uint64 {
	if r.txn == nil {
		return 0
	}
	var idx uint64
	if len(tables) == 0 {
		it, err := r.txn.Get(tableIndex, indexID)
		if err != nil {
			return 0
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			idx = max(idx, raw.(*tableIndexRow).Index)
		}
		return idx
	}
	for _, t := range tables {
		raw, err := r.txn.First(tableIndex, indexID, t)
		if err == nil && raw != nil {
			idx = max(idx, raw.(*tableIndexRow).Index)
		}
	}
	return idx
}

// Cluster returns the cluster row.
func (r *ReadTxn) Cluster(ws memdb.WatchSet) (*model.Cluster, error) {
	if r.txn == nil {
		return nil, fmt.Errorf("state: %s: %w", TableCluster, ErrTxnClosed)
	}
	ch, raw, err := r.txn.FirstWatch(TableCluster, indexID)
	if err != nil {
		return nil, fmt.Errorf("state: %s: %w", TableCluster, err)
	}
	ws.Add(ch)
	if raw == nil {
		return nil, fmt.Errorf("state: %s: %w", TableCluster, ErrNotFound)
	}
	return raw.(*model.Cluster), nil
}

// Node returns the node with the given ID.
func (r *ReadTxn) Node(ws memdb.WatchSet, id string) (*model.Node, error) {
	return first[model.Node](r, ws, TableNodes, indexID, id)
}

// ReservedAddrs returns the addresses services' VIPs and nodes' endpoints hold on a
// network, each with its holder ("service <name>", "node <hostname>"). Tasks'
// addresses are not among them.
func (r *ReadTxn) ReservedAddrs(network string) (map[netip.Addr]string, error) {
	out := map[netip.Addr]string{}
	if network == "" {
		return out, nil
	}
	svcs, err := list[model.Service](r, nil, TableServices, indexAddress+"_prefix", network)
	if err != nil {
		return nil, err
	}
	for _, s := range svcs {
		for _, v := range s.Endpoint.VIPs {
			if p, err := netip.ParsePrefix(v.Addr); err == nil && v.Network == network {
				out[p.Addr()] = "service " + s.Name
			}
		}
	}
	nodes, err := list[model.Node](r, nil, TableNodes, indexAddress+"_prefix", network)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		for _, a := range n.Networks {
			if p, err := netip.ParsePrefix(a.Addr); err == nil && a.Network == network {
				out[p.Addr()] = "node " + n.Hostname
			}
		}
	}
	return out, nil
}

// NodeByHostname returns the node with the given hostname.
func (r *ReadTxn) NodeByHostname(ws memdb.WatchSet, hostname string) (*model.Node, error) {
	return first[model.Node](r, ws, TableNodes, indexHostname, hostname)
}

// Nodes returns every node, by hostname.
func (r *ReadTxn) Nodes(ws memdb.WatchSet) ([]*model.Node, error) {
	return list[model.Node](r, ws, TableNodes, indexHostname)
}

// Source returns the source with the given name.
func (r *ReadTxn) Source(ws memdb.WatchSet, name string) (*model.Source, error) {
	return first[model.Source](r, ws, TableSources, indexID, name)
}

// Sources returns every source, by name.
func (r *ReadTxn) Sources(ws memdb.WatchSet) ([]*model.Source, error) {
	return list[model.Source](r, ws, TableSources, indexID)
}

// Stack returns the stack with the given name.
func (r *ReadTxn) Stack(ws memdb.WatchSet, name string) (*model.Stack, error) {
	return first[model.Stack](r, ws, TableStacks, indexID, name)
}

// Stacks returns every stack, by name.
func (r *ReadTxn) Stacks(ws memdb.WatchSet) ([]*model.Stack, error) {
	return list[model.Stack](r, ws, TableStacks, indexID)
}

// StacksBySource returns the stacks a source created, by name.
func (r *ReadTxn) StacksBySource(ws memdb.WatchSet, source string) ([]*model.Stack, error) {
	return list[model.Stack](r, ws, TableStacks, indexSource, source)
}

// Service returns the service with the given ID.
func (r *ReadTxn) Service(ws memdb.WatchSet, id string) (*model.Service, error) {
	return first[model.Service](r, ws, TableServices, indexID, id)
}

// ServiceByName returns the service with the given cluster-wide name.
func (r *ReadTxn) ServiceByName(ws memdb.WatchSet, name string) (*model.Service, error) {
	return first[model.Service](r, ws, TableServices, indexName, name)
}

// Services returns every service, by name.
func (r *ReadTxn) Services(ws memdb.WatchSet) ([]*model.Service, error) {
	return list[model.Service](r, ws, TableServices, indexName)
}

// ServicesByStack returns the services of a stack, by name.
func (r *ReadTxn) ServicesByStack(ws memdb.WatchSet, stack string) ([]*model.Service, error) {
	return list[model.Service](r, ws, TableServices, indexStack+"_prefix", stack)
}

// watchTasks adds the task table's watch to ws: the channel of its table index
// row, which every commit that writes a task closes.
func (r *ReadTxn) watchTasks(ws memdb.WatchSet) error {
	if ws == nil {
		return nil
	}
	ch, _, err := r.txn.FirstWatch(tableIndex, indexID, TableTasks)
	if err != nil {
		return fmt.Errorf("state: watch %s: %w", TableTasks, err)
	}
	ws.Add(ch)
	return nil
}

// Task returns the task with the given ID. A watch wakes on any write to the
// task table.
func (r *ReadTxn) Task(ws memdb.WatchSet, id string) (*model.Task, error) {
	if r.txn == nil {
		return nil, fmt.Errorf("state: %s %q: %w", TableTasks, id, ErrTxnClosed)
	}
	if err := r.watchTasks(ws); err != nil {
		return nil, err
	}
	t, ok := r.tasks.byID.get(id)
	if !ok {
		return nil, fmt.Errorf("state: %s %q: %w", TableTasks, id, ErrNotFound)
	}
	return t, nil
}

// listTasks runs one of the task table's listers, with a table-wide watch.
func (r *ReadTxn) listTasks(ws memdb.WatchSet, list func(*taskTable) []*model.Task) ([]*model.Task, error) {
	if r.txn == nil {
		return nil, fmt.Errorf("state: list %s: %w", TableTasks, ErrTxnClosed)
	}
	if err := r.watchTasks(ws); err != nil {
		return nil, err
	}
	return list(r.tasks), nil
}

// Tasks returns every task, by ID.
func (r *ReadTxn) Tasks(ws memdb.WatchSet) ([]*model.Task, error) {
	return r.listTasks(ws, (*taskTable).all)
}

// TasksByService returns the tasks of a service, by slot then ID (global
// tasks have slot 0).
func (r *ReadTxn) TasksByService(ws memdb.WatchSet, serviceID string) ([]*model.Task, error) {
	return r.listTasks(ws, func(tt *taskTable) []*model.Task { return tt.byService(serviceID) })
}

// TasksBySlot returns the tasks of one slot of a service, current and
// historic, by ID.
func (r *ReadTxn) TasksBySlot(ws memdb.WatchSet, serviceID string, slot uint64) ([]*model.Task, error) {
	return r.listTasks(ws, func(tt *taskTable) []*model.Task { return tt.bySlotOf(serviceID, slot) })
}

// TasksByNode returns the tasks assigned to a node, by ID. Its watch wakes only
// when that node's tasks change (see NodeTasksIndex).
func (r *ReadTxn) TasksByNode(ws memdb.WatchSet, nodeID string) ([]*model.Task, error) {
	if r.txn == nil {
		return nil, fmt.Errorf("state: list %s: %w", TableTasks, ErrTxnClosed)
	}
	if ws != nil {
		seen, _ := r.tasks.nodeIndex.get(nodeID)
		ws.Add(r.store.nodeWatch(nodeID, seen))
	}
	return r.tasks.onNode(nodeID), nil
}

// NodeTasksIndex is the raft index of the last write that changed the tasks of a
// node: created or deleted one, changed one, or moved one to or from the node; 0
// if none ever did. It is the index for an agent's blocking query on its tasks
// (TasksByNode): it moves with that node's tasks only, deletions included.
func (r *ReadTxn) NodeTasksIndex(nodeID string) uint64 {
	if r.txn == nil {
		return 0
	}
	idx, _ := r.tasks.nodeIndex.get(nodeID)
	return idx
}

// Network returns the network with the given ID.
func (r *ReadTxn) Network(ws memdb.WatchSet, id string) (*model.Network, error) {
	return first[model.Network](r, ws, TableNetworks, indexID, id)
}

// NetworkByName returns the network with the given name.
func (r *ReadTxn) NetworkByName(ws memdb.WatchSet, name string) (*model.Network, error) {
	return first[model.Network](r, ws, TableNetworks, indexName, name)
}

// Networks returns every network, by name.
func (r *ReadTxn) Networks(ws memdb.WatchSet) ([]*model.Network, error) {
	return list[model.Network](r, ws, TableNetworks, indexName)
}

// Secret returns the latest version of the named secret, data included.
func (r *ReadTxn) Secret(ws memdb.WatchSet, name string) (*model.Secret, error) {
	return last[model.Secret](r, ws, TableSecrets, indexName+"_prefix", name)
}

// SecretVersion returns one version of the named secret, data included.
func (r *ReadTxn) SecretVersion(ws memdb.WatchSet, name string, version uint64) (*model.Secret, error) {
	return first[model.Secret](r, ws, TableSecrets, indexName, name, version)
}

// SecretByID returns the secret version with the given ID, data included.
func (r *ReadTxn) SecretByID(ws memdb.WatchSet, id string) (*model.Secret, error) {
	return first[model.Secret](r, ws, TableSecrets, indexID, id)
}

// Secrets returns every version of every secret, by name then version, as
// Redacted copies: a listing never carries secret data.
func (r *ReadTxn) Secrets(ws memdb.WatchSet) ([]*model.Secret, error) {
	all, err := list[model.Secret](r, ws, TableSecrets, indexName)
	for i, s := range all {
		all[i] = s.Redacted()
	}
	return all, err
}

// Config returns the latest version of the named config.
func (r *ReadTxn) Config(ws memdb.WatchSet, name string) (*model.Config, error) {
	return last[model.Config](r, ws, TableConfigs, indexName+"_prefix", name)
}

// ConfigVersion returns one version of the named config.
func (r *ReadTxn) ConfigVersion(ws memdb.WatchSet, name string, version uint64) (*model.Config, error) {
	return first[model.Config](r, ws, TableConfigs, indexName, name, version)
}

// ConfigByID returns the config version with the given ID.
func (r *ReadTxn) ConfigByID(ws memdb.WatchSet, id string) (*model.Config, error) {
	return first[model.Config](r, ws, TableConfigs, indexID, id)
}

// Configs returns every version of every config, by name then version.
func (r *ReadTxn) Configs(ws memdb.WatchSet) ([]*model.Config, error) {
	return list[model.Config](r, ws, TableConfigs, indexName)
}

// Volume returns the volume record with the given ID.
func (r *ReadTxn) Volume(ws memdb.WatchSet, id string) (*model.Volume, error) {
	return first[model.Volume](r, ws, TableVolumes, indexID, id)
}

// VolumeByName returns the named volume of a node.
func (r *ReadTxn) VolumeByName(ws memdb.WatchSet, node, name string) (*model.Volume, error) {
	return first[model.Volume](r, ws, TableVolumes, indexNodeName, node, name)
}

// Volumes returns every volume record, by node then name.
func (r *ReadTxn) Volumes(ws memdb.WatchSet) ([]*model.Volume, error) {
	return list[model.Volume](r, ws, TableVolumes, indexNodeName)
}

// VolumesByNode returns the volume records of a node, by name.
func (r *ReadTxn) VolumesByNode(ws memdb.WatchSet, node string) ([]*model.Volume, error) {
	return list[model.Volume](r, ws, TableVolumes, indexNodeName+"_prefix", node)
}
