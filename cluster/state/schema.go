package state

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/berthd/berth/cluster/model"
	"github.com/hashicorp/go-memdb"
)

// Table names. They are also the names ReadTxn.Index and Store.Blocking take.
const (
	TableCluster  = "cluster"
	TableNodes    = "nodes"
	TableSources  = "sources"
	TableStacks   = "stacks"
	TableServices = "services"
	TableTasks    = "tasks"
	TableNetworks = "networks"
	TableSecrets  = "secrets"
	TableConfigs  = "configs"
	TableVolumes  = "volumes"

	// tableIndex holds one tableIndexRow per table: the raft index of the last
	// write to it.
	tableIndex = "index"
)

// Index names. Every table has indexID, the primary key (the ID, or the name
// for sources and stacks).
const (
	indexID       = "id"
	indexHostname = "hostname"  // nodes, unique
	indexName     = "name"      // services, networks, sources: unique; secrets, configs: (name, version), unique
	indexStack    = "stack"     // services: (stack, name)
	indexSource   = "source"    // stacks
	indexNodeName = "node_name" // volumes: (node, name), unique
	indexAddress  = "address"   // services by their VIPs, nodes by their endpoints: (network ID, IP)
)

// Tables returns the names of the data tables, in the order snapshots write
// them.
func Tables() []string {
	return []string{TableCluster, TableNodes, TableSources, TableStacks, TableServices,
		TableTasks, TableNetworks, TableSecrets, TableConfigs, TableVolumes}
}

func knownTable(name string) bool {
	switch name {
	case TableCluster, TableNodes, TableSources, TableStacks, TableServices,
		TableTasks, TableNetworks, TableSecrets, TableConfigs, TableVolumes:
		return true
	}
	return false
}

// tableIndexRow is a row of the index table.
type tableIndexRow struct {
	Table string `json:"table"`
	Index uint64 `json:"index"`
}

// schema builds the memdb schema, of every table but tasks (tasktable.go). The
// indexers are typed functions rather than memdb's reflective field indexers:
// they are faster, and a renamed field fails to compile instead of failing at
// the first insert.
func schema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableIndex: {
			Name: tableIndex,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: str(func(r *tableIndexRow) string { return r.Table })},
			},
		},
		TableCluster: {
			Name: TableCluster,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: str(func(c *model.Cluster) string { return c.ID })},
			},
		},
		TableNodes: {
			Name: TableNodes,
			Indexes: map[string]*memdb.IndexSchema{
				indexAddress:  {Name: indexAddress, AllowMissing: true, Indexer: addresses(func(n *model.Node) []model.Attachment { return n.Networks })},
				indexID:       {Name: indexID, Unique: true, Indexer: str(func(n *model.Node) string { return n.ID })},
				indexHostname: {Name: indexHostname, Unique: true, Indexer: str(func(n *model.Node) string { return n.Hostname })},
			},
		},
		TableSources: {
			Name: TableSources,
			Indexes: map[string]*memdb.IndexSchema{
				// Sources are keyed by name, so the primary key is the name index.
				indexID: {Name: indexID, Unique: true, Indexer: str(func(s *model.Source) string { return s.Name })},
			},
		},
		TableStacks: {
			Name: TableStacks,
			Indexes: map[string]*memdb.IndexSchema{
				indexID:     {Name: indexID, Unique: true, Indexer: str(func(s *model.Stack) string { return s.Name })},
				indexSource: {Name: indexSource, AllowMissing: true, Indexer: str(func(s *model.Stack) string { return s.Source })},
			},
		},
		TableServices: {
			Name: TableServices,
			Indexes: map[string]*memdb.IndexSchema{
				indexID:   {Name: indexID, Unique: true, Indexer: str(func(s *model.Service) string { return s.ID })},
				indexName: {Name: indexName, Unique: true, Indexer: str(func(s *model.Service) string { return s.Name })},
				// (stack, name), so that a stack's services list by name. A service
				// of no stack (`service create`) has no entry.
				indexStack: {Name: indexStack, AllowMissing: true, Indexer: strStr(
					func(s *model.Service) string { return s.Stack }, func(s *model.Service) string { return s.Name })},
				indexAddress: {Name: indexAddress, AllowMissing: true, Indexer: addresses(func(s *model.Service) []model.Attachment {
					out := make([]model.Attachment, len(s.Endpoint.VIPs))
					for i, v := range s.Endpoint.VIPs {
						out[i] = model.Attachment{Network: v.Network, Addr: v.Addr}
					}
					return out
				})},
			},
		},
		TableNetworks: {
			Name: TableNetworks,
			Indexes: map[string]*memdb.IndexSchema{
				indexID:   {Name: indexID, Unique: true, Indexer: str(func(n *model.Network) string { return n.ID })},
				indexName: {Name: indexName, Unique: true, Indexer: str(func(n *model.Network) string { return n.Name })},
			},
		},
		TableSecrets: {
			Name: TableSecrets,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: str(func(s *model.Secret) string { return s.ID })},
				indexName: {Name: indexName, Unique: true, Indexer: strUint(
					func(s *model.Secret) string { return s.Name }, func(s *model.Secret) uint64 { return s.Version })},
			},
		},
		TableConfigs: {
			Name: TableConfigs,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: str(func(c *model.Config) string { return c.ID })},
				indexName: {Name: indexName, Unique: true, Indexer: strUint(
					func(c *model.Config) string { return c.Name }, func(c *model.Config) uint64 { return c.Version })},
			},
		},
		TableVolumes: {
			Name: TableVolumes,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: str(func(v *model.Volume) string { return v.ID })},
				indexNodeName: {Name: indexNodeName, Unique: true, Indexer: strStr(
					func(v *model.Volume) string { return v.Node }, func(v *model.Volume) string { return v.Name })},
			},
		},
	}}
}

// stringIndexer indexes a string of a row, NUL-terminated so that "web" is
// not a prefix match of "web2" in exact lookups. An empty string is "missing"
// (memdb refuses the row unless the index allows missing values).
type stringIndexer[T any] struct{ get func(*T) string }

func str[T any](get func(*T) string) *stringIndexer[T] { return &stringIndexer[T]{get: get} }

func (ix *stringIndexer[T]) FromObject(raw any) (bool, []byte, error) {
	obj, ok := raw.(*T)
	if !ok {
		return false, nil, fmt.Errorf("unexpected row type %T", raw)
	}
	s := ix.get(obj)
	if s == "" {
		return false, nil, nil
	}
	return true, terminated(s, 0), nil
}

// terminated returns s, a NUL and room for extra more bytes, in one
// allocation: indexers run for every index of every row written.
func terminated(s string, extra int) []byte {
	b := make([]byte, len(s)+1, len(s)+1+extra)
	copy(b, s)
	return b
}

func (ix *stringIndexer[T]) FromArgs(args ...any) ([]byte, error) {
	s, err := stringArg(args, 0, 1)
	if err != nil {
		return nil, err
	}
	return append([]byte(s), 0), nil
}

// PrefixFromArgs makes "id_prefix" lookups work (short IDs in the CLI).
func (ix *stringIndexer[T]) PrefixFromArgs(args ...any) ([]byte, error) {
	s, err := stringArg(args, 0, 1)
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// strUintIndexer indexes (string, uint64) as the NUL-terminated string then
// the number big-endian, so that rows sort by string then number: the last
// row of a name is its latest version. A prefix lookup takes the string alone
// and matches it whole.
type strUintIndexer[T any] struct {
	s func(*T) string
	n func(*T) uint64
}

func strUint[T any](s func(*T) string, n func(*T) uint64) *strUintIndexer[T] {
	return &strUintIndexer[T]{s: s, n: n}
}

func (ix *strUintIndexer[T]) FromObject(raw any) (bool, []byte, error) {
	obj, ok := raw.(*T)
	if !ok {
		return false, nil, fmt.Errorf("unexpected row type %T", raw)
	}
	s := ix.s(obj)
	if s == "" {
		return false, nil, nil
	}
	return true, binary.BigEndian.AppendUint64(terminated(s, 8), ix.n(obj)), nil
}

func (ix *strUintIndexer[T]) FromArgs(args ...any) ([]byte, error) {
	s, err := stringArg(args, 0, 2)
	if err != nil {
		return nil, err
	}
	n, ok := args[1].(uint64)
	if !ok {
		return nil, fmt.Errorf("argument 2 must be a uint64, not %T", args[1])
	}
	return binary.BigEndian.AppendUint64(append([]byte(s), 0), n), nil
}

func (ix *strUintIndexer[T]) PrefixFromArgs(args ...any) ([]byte, error) {
	s, err := stringArg(args, 0, 1)
	if err != nil {
		return nil, err
	}
	return append([]byte(s), 0), nil
}

// strStrIndexer indexes two strings, each NUL-terminated; a prefix lookup
// takes the first alone and matches it whole.
type strStrIndexer[T any] struct{ a, b func(*T) string }

func strStr[T any](a, b func(*T) string) *strStrIndexer[T] { return &strStrIndexer[T]{a: a, b: b} }

func (ix *strStrIndexer[T]) FromObject(raw any) (bool, []byte, error) {
	obj, ok := raw.(*T)
	if !ok {
		return false, nil, fmt.Errorf("unexpected row type %T", raw)
	}
	a, b := ix.a(obj), ix.b(obj)
	if a == "" || b == "" {
		return false, nil, nil
	}
	return true, append(append(terminated(a, len(b)+1), b...), 0), nil
}

func (ix *strStrIndexer[T]) FromArgs(args ...any) ([]byte, error) {
	a, err := stringArg(args, 0, 2)
	if err != nil {
		return nil, err
	}
	b, err := stringArg(args, 1, 2)
	if err != nil {
		return nil, err
	}
	return append(append(append([]byte(a), 0), b...), 0), nil
}

func (ix *strStrIndexer[T]) PrefixFromArgs(args ...any) ([]byte, error) {
	a, err := stringArg(args, 0, 1)
	if err != nil {
		return nil, err
	}
	return append([]byte(a), 0), nil
}

// addressIndexer indexes the addresses a row holds on networks, (network ID, IP)
// each NUL-terminated, the IP without its prefix length: a lookup by a task's
// attachment finds the VIP or node endpoint that holds the same address, a prefix
// lookup by network every one held there.
type addressIndexer[T any] struct{ get func(*T) []model.Attachment }

func addresses[T any](get func(*T) []model.Attachment) *addressIndexer[T] {
	return &addressIndexer[T]{get: get}
}

func (ix *addressIndexer[T]) FromObject(raw any) (bool, [][]byte, error) {
	obj, ok := raw.(*T)
	if !ok {
		return false, nil, fmt.Errorf("unexpected row type %T", raw)
	}
	var keys [][]byte
	for _, a := range ix.get(obj) {
		if k, ok := addressKey(a.Network, a.Addr); ok {
			keys = append(keys, k)
		}
	}
	return len(keys) > 0, keys, nil
}

// FromArgs takes (network ID, address in CIDR form): an exact lookup.
func (ix *addressIndexer[T]) FromArgs(args ...any) ([]byte, error) {
	network, err := stringArg(args, 0, 2)
	if err != nil {
		return nil, err
	}
	cidr, err := stringArg(args, 1, 2)
	if err != nil {
		return nil, err
	}
	k, ok := addressKey(network, cidr)
	if !ok {
		return nil, fmt.Errorf("address %q on network %q is not in CIDR form", cidr, network)
	}
	return k, nil
}

// PrefixFromArgs takes the network alone: every address held on it.
func (ix *addressIndexer[T]) PrefixFromArgs(args ...any) ([]byte, error) {
	network, err := stringArg(args, 0, 1)
	if err != nil {
		return nil, err
	}
	return append([]byte(network), 0), nil
}

func addressKey(network, cidr string) ([]byte, bool) {
	p, err := netip.ParsePrefix(cidr)
	if network == "" || err != nil {
		return nil, false
	}
	ip := p.Addr().String()
	return append(append(terminated(network, len(ip)+1), ip...), 0), true
}

// stringArg returns args[i] as a string, checking that there are want args.
func stringArg(args []any, i, want int) (string, error) {
	if len(args) != want {
		return "", fmt.Errorf("want %d arguments, got %d", want, len(args))
	}
	s, ok := args[i].(string)
	if !ok {
		return "", fmt.Errorf("argument %d must be a string, not %T", i+1, args[i])
	}
	return s, nil
}
