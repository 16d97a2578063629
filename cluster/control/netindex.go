package control

import (
	"encoding/binary"
	"hash"
	"hash/fnv"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// netTables are the tables a node's network view is made of.
var netTables = []string{state.TableNodes, state.TableTasks, state.TableServices, state.TableNetworks, state.TableStacks}

// netIndex is the cluster's networks as the agents' network watches see them, built
// once per state change (at raft index index) for every node: each node's view is
// assembled from it without reading the store.
type netIndex struct {
	index uint64
	st    *state.Store
	nets  map[string]*netEntry
	svcs  map[string]*svcEntry
	nodes map[string]*nodeNets
	// svcNets are the networks each service has a task endpoint on, while the
	// index is built.
	svcNets map[string]map[string]bool
}

// netEntry is one network with every endpoint on it, and the IDs of the services
// with an endpoint or a VIP on it, sorted.
type netEntry struct {
	row       *state.Network
	endpoints []api.NetworkEndpoint
	services  []string
	hash      uint64
}

type svcEntry struct {
	wire api.NetworkService
	hash uint64
}

// nodeNets is what a node's view is made of: its underlay address and the IDs of
// its networks, sorted.
type nodeNets struct {
	underlay string
	nets     []string
}

// buildNetIndex indexes the networks of the state read by tx at raft index idx.
func buildNetIndex(tx *state.ReadTxn, st *state.Store, idx uint64) (*netIndex, error) {
	nodes, err := tx.Nodes(nil)
	if err != nil {
		return nil, err
	}
	nets, err := tx.Networks(nil)
	if err != nil {
		return nil, err
	}
	tasks, err := tx.Tasks(nil)
	if err != nil {
		return nil, err
	}
	svcs, err := tx.Services(nil)
	if err != nil {
		return nil, err
	}
	ni := &netIndex{index: idx, st: st, nets: make(map[string]*netEntry, len(nets)),
		svcs: map[string]*svcEntry{}, nodes: make(map[string]*nodeNets, len(nodes)), svcNets: map[string]map[string]bool{}}
	for _, n := range nets {
		ni.nets[n.ID] = &netEntry{row: n}
	}
	byID := make(map[string]*state.Node, len(nodes))
	for _, n := range nodes {
		byID[n.ID] = n
		ni.nodes[n.ID] = &nodeNets{underlay: underlay(n.Addr)}
	}
	for _, t := range tasks {
		ni.addTask(t, byID[t.NodeID])
	}
	for _, n := range nodes {
		ni.addNodeEndpoints(n)
	}
	for _, s := range svcs {
		ni.addService(tx, s)
	}
	ni.svcNets = nil
	ni.seal()
	return ni, nil
}

// underlay is the host part of a node's address.
func underlay(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// bareAddr is the address of an attachment's or a VIP's CIDR ("10.0.1.5/24"); ok
// is false when it is neither a CIDR nor an address.
func bareAddr(cidr string) (string, bool) {
	if p, err := netip.ParsePrefix(cidr); err == nil {
		return p.Addr().String(), true
	}
	if a, err := netip.ParseAddr(cidr); err == nil {
		return a.String(), true
	}
	return "", false
}

// addTask records a task's attachments: its networks become its node's, and it is an
// endpoint on them unless its node is down (a dead node's entries go everywhere at
// once). Pending and ended tasks have no endpoint.
func (ni *netIndex) addTask(t *state.Task, node *state.Node) {
	if node == nil || t.Status.State.Terminal() || len(t.Networks) == 0 {
		return
	}
	own := ni.nodes[node.ID]
	down := node.Status.State == state.NodeDown
	ready := t.Status.State == state.TaskRunning && t.DesiredState == state.TaskRunning && node.Status.State == state.NodeReady
	for _, a := range t.Networks {
		e := ni.nets[a.Network]
		addr, ok := bareAddr(a.Addr)
		if e == nil || !ok {
			continue
		}
		own.nets = append(own.nets, a.Network)
		if down {
			continue
		}
		e.endpoints = append(e.endpoints, api.NetworkEndpoint{Network: a.Network, TaskID: t.ID, ServiceID: t.ServiceID,
			NodeID: node.ID, Addr: addr, MAC: a.MAC, Node: own.underlay, Ready: ready})
		if ni.svcNets[t.ServiceID] == nil {
			ni.svcNets[t.ServiceID] = map[string]bool{}
		}
		ni.svcNets[t.ServiceID][a.Network] = true
	}
}

// addNodeEndpoints records a node's own endpoints (its ingress address).
func (ni *netIndex) addNodeEndpoints(n *state.Node) {
	own := ni.nodes[n.ID]
	for _, a := range n.Networks {
		e := ni.nets[a.Network]
		addr, ok := bareAddr(a.Addr)
		if e == nil || !ok {
			continue
		}
		own.nets = append(own.nets, a.Network)
		if n.Status.State == state.NodeDown {
			continue
		}
		e.endpoints = append(e.endpoints, api.NetworkEndpoint{Network: a.Network, NodeID: n.ID, Addr: addr,
			MAC: a.MAC, Node: own.underlay, Ready: n.Status.State == state.NodeReady})
	}
}

// addService records a service on the networks where it has an endpoint or a VIP.
func (ni *netIndex) addService(tx *state.ReadTxn, s *state.Service) {
	on := ni.svcNets[s.ID]
	if on == nil {
		on = map[string]bool{}
	}
	w := api.NetworkService{ID: s.ID, Name: s.Name, ShortName: s.Spec.Name, Stack: s.Stack,
		DNSRR: s.Spec.Deploy.EndpointMode == "dnsrr"}
	for _, v := range s.Endpoint.VIPs {
		addr, ok := bareAddr(v.Addr)
		if ni.nets[v.Network] == nil || !ok {
			continue
		}
		if w.VIPs == nil {
			w.VIPs = map[string]string{}
		}
		w.VIPs[v.Network] = addr
		on[v.Network] = true
	}
	if len(on) == 0 {
		return
	}
	w.Aliases = serviceAliases(tx, s)
	for _, p := range s.Spec.Ports {
		if p.Mode == spec.PortModeIngress && p.Published != 0 {
			w.IngressPorts = append(w.IngressPorts, p)
		}
	}
	ni.svcs[s.ID] = &svcEntry{wire: w, hash: hashService(w)}
	for id := range on {
		ni.nets[id].services = append(ni.nets[id].services, s.ID)
	}
}

// serviceAliases maps the aliases of a service's spec networks (named by their key
// in the stack file) to the networks' IDs. A network the stack does not define, or
// that has no row yet, has no aliases.
func serviceAliases(tx *state.ReadTxn, s *state.Service) map[string][]string {
	var out map[string][]string
	var stack *state.Stack
	for _, sn := range s.Spec.Networks {
		if len(sn.Aliases) == 0 {
			continue
		}
		if stack == nil {
			var err error
			if stack, err = tx.Stack(nil, s.Stack); err != nil || stack.Spec == nil {
				return out
			}
		}
		n := stack.Spec.Networks[sn.Name]
		if n == nil {
			continue
		}
		row, err := tx.NetworkByName(nil, n.Name)
		if err != nil {
			continue
		}
		if out == nil {
			out = map[string][]string{}
		}
		out[row.ID] = slices.Clone(sn.Aliases)
	}
	return out
}

// seal sorts what the build appended in map order and hashes every network, so that
// a node's view hash changes exactly when something of its view does.
func (ni *netIndex) seal() {
	for _, n := range ni.nodes {
		slices.Sort(n.nets)
		n.nets = slices.Compact(n.nets)
	}
	for _, e := range ni.nets {
		slices.Sort(e.services)
		e.hash = ni.hashNetwork(e)
	}
}

// nodeHash identifies a node's view: its underlay address and its networks' hashes.
func (ni *netIndex) nodeHash(id string) uint64 {
	n := ni.nodes[id]
	if n == nil {
		return 0
	}
	h := fnv.New64a()
	writeStrings(h, n.underlay)
	for _, id := range n.nets {
		writeStrings(h, id)
		writeUint(h, ni.nets[id].hash)
	}
	return h.Sum64()
}

// view assembles a node's view.
func (ni *netIndex) view(id string) *api.NetworkView {
	v := &api.NetworkView{Networks: []*state.Network{}, Endpoints: []api.NetworkEndpoint{}, Services: []api.NetworkService{}}
	n := ni.nodes[id]
	if n == nil {
		return v
	}
	v.Underlay = n.underlay
	var svcs []string
	for _, id := range n.nets {
		e := ni.nets[id]
		v.Networks = append(v.Networks, e.row)
		v.Endpoints = append(v.Endpoints, e.endpoints...)
		svcs = append(svcs, e.services...)
	}
	slices.Sort(svcs)
	for _, id := range slices.Compact(svcs) {
		v.Services = append(v.Services, ni.svcs[id].wire)
	}
	return v
}

func (ni *netIndex) hashNetwork(e *netEntry) uint64 {
	h := fnv.New64a()
	r := e.row
	writeStrings(h, r.ID, r.Name, r.Stack, r.Driver, r.Subnet, r.Gateway)
	writeUint(h, uint64(r.VNI))
	writeBools(h, r.Internal, r.Attachable, r.Ingress)
	for _, ep := range e.endpoints {
		writeStrings(h, ep.TaskID, ep.ServiceID, ep.NodeID, ep.Addr, ep.MAC, ep.Node)
		writeBools(h, ep.Ready)
	}
	for _, id := range e.services {
		writeStrings(h, id)
		writeUint(h, ni.svcs[id].hash)
	}
	return h.Sum64()
}

func hashService(s api.NetworkService) uint64 {
	h := fnv.New64a()
	writeStrings(h, s.ID, s.Name, s.ShortName, s.Stack)
	writeBools(h, s.DNSRR)
	for _, k := range sortedKeys(s.VIPs) {
		writeStrings(h, k, s.VIPs[k])
	}
	for _, k := range sortedKeys(s.Aliases) {
		writeStrings(h, k, strings.Join(s.Aliases[k], ","))
	}
	for _, p := range s.IngressPorts {
		writeUint(h, uint64(p.Target)<<32|uint64(p.Published))
		writeStrings(h, p.Protocol)
	}
	return h.Sum64()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// writeStrings hashes strings with their lengths, so that ("ab","c") and ("a","bc")
// differ.
func writeStrings(h hash.Hash64, ss ...string) {
	for _, s := range ss {
		writeUint(h, uint64(len(s)))
		h.Write([]byte(s))
	}
}

func writeUint(h hash.Hash64, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	h.Write(b[:])
}

func writeBools(h hash.Hash64, bs ...bool) {
	for _, b := range bs {
		if b {
			h.Write([]byte{1})
		} else {
			h.Write([]byte{0})
		}
	}
}
