package control

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash"
	"hash/fnv"
	"net"
	"net/netip"
	"slices"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
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
	row       *model.Network
	endpoints []api.NetworkEndpoint
	services  []string
	hash      uint64
	// rowJSON and endpointsJSON are row and endpoints encoded once for every
	// answer (the endpoints as array elements, without the brackets).
	rowJSON, endpointsJSON []byte
}

type svcEntry struct {
	wire api.NetworkService
	json []byte
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
	byID := make(map[string]*model.Node, len(nodes))
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
	if err := ni.seal(); err != nil {
		return nil, fmt.Errorf("network index: %w", err)
	}
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
func (ni *netIndex) addTask(t *model.Task, node *model.Node) {
	if node == nil || t.Status.State.Terminal() || len(t.Networks) == 0 {
		return
	}
	own := ni.nodes[node.ID]
	down := node.Status.State == model.NodeDown
	ready := t.Status.State == model.TaskRunning && t.DesiredState == model.TaskRunning && node.Status.State == model.NodeReady
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
func (ni *netIndex) addNodeEndpoints(n *model.Node) {
	own := ni.nodes[n.ID]
	for _, a := range n.Networks {
		e := ni.nets[a.Network]
		addr, ok := bareAddr(a.Addr)
		if e == nil || !ok {
			continue
		}
		own.nets = append(own.nets, a.Network)
		if n.Status.State == model.NodeDown {
			continue
		}
		e.endpoints = append(e.endpoints, api.NetworkEndpoint{Network: a.Network, NodeID: n.ID, Addr: addr,
			MAC: a.MAC, Node: own.underlay, Ready: n.Status.State == model.NodeReady})
	}
}

// addService records a service on the networks where it has an endpoint or a VIP.
func (ni *netIndex) addService(tx *state.ReadTxn, s *model.Service) {
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
	ni.svcs[s.ID] = &svcEntry{wire: w}
	for id := range on {
		ni.nets[id].services = append(ni.nets[id].services, s.ID)
	}
}

// serviceAliases maps the aliases of a service's spec networks (named by their key
// in the stack file) to the networks' IDs. A network the stack does not define, or
// that has no row yet, has no aliases.
func serviceAliases(tx *state.ReadTxn, s *model.Service) map[string][]string {
	var out map[string][]string
	var stack *spec.Stack
	for _, sn := range s.Spec.Networks {
		if len(sn.Aliases) == 0 {
			continue
		}
		if stack == nil {
			var err error
			if stack, err = command.ServiceStack(tx, s, &s.Spec); err != nil {
				return out
			}
		}
		n := stack.Networks[sn.Name]
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
func (ni *netIndex) seal() error {
	for _, n := range ni.nodes {
		slices.Sort(n.nets)
		n.nets = slices.Compact(n.nets)
	}
	for _, s := range ni.svcs {
		var err error
		if s.json, err = json.Marshal(s.wire); err != nil {
			return fmt.Errorf("service %s: %w", s.wire.Name, err)
		}
		s.hash = hashBytes(s.json)
	}
	for _, e := range ni.nets {
		slices.Sort(e.services)
		if err := ni.encode(e); err != nil {
			return fmt.Errorf("network %s: %w", e.row.Name, err)
		}
	}
	return nil
}

// encode encodes a network's row and endpoints, and hashes them with its services'.
func (ni *netIndex) encode(e *netEntry) error {
	var err error
	if e.rowJSON, err = json.Marshal(e.row); err != nil {
		return err
	}
	if len(e.endpoints) > 0 {
		all, err := json.Marshal(e.endpoints)
		if err != nil {
			return err
		}
		e.endpointsJSON = all[1 : len(all)-1]
	}
	h := fnv.New64a()
	h.Write(e.rowJSON)
	h.Write([]byte{0})
	h.Write(e.endpointsJSON)
	for _, id := range e.services {
		writeStrings(h, id)
		writeUint(h, ni.svcs[id].hash)
	}
	e.hash = h.Sum64()
	return nil
}

func hashBytes(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
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

// view assembles a node's view, with its encoding from the pieces encoded once.
func (ni *netIndex) view(id string) *api.NetworkView {
	n := ni.nodes[id]
	if n == nil {
		n = &nodeNets{}
	}
	endpoints := 0
	for _, id := range n.nets {
		endpoints += len(ni.nets[id].endpoints)
	}
	v := &api.NetworkView{Underlay: n.underlay, Networks: make([]*model.Network, 0, len(n.nets)),
		Endpoints: make([]api.NetworkEndpoint, 0, endpoints), Services: []api.NetworkService{}}
	size := 64
	var svcs []string
	for _, id := range n.nets {
		e := ni.nets[id]
		v.Networks = append(v.Networks, e.row)
		v.Endpoints = append(v.Endpoints, e.endpoints...)
		svcs = append(svcs, e.services...)
		size += len(e.rowJSON) + len(e.endpointsJSON) + 2
	}
	slices.Sort(svcs)
	svcs = slices.Compact(svcs)
	for _, id := range svcs {
		v.Services = append(v.Services, ni.svcs[id].wire)
		size += len(ni.svcs[id].json) + 1
	}
	v.Encoded = ni.encodeView(n, svcs, size)
	return v
}

// encodeView writes the JSON of a node's view (as encoding/json would, a newline
// after) from its networks' and services' encoded pieces: an answer costs a copy,
// not an encoding.
func (ni *netIndex) encodeView(n *nodeNets, svcs []string, size int) []byte {
	underlay, _ := json.Marshal(n.underlay) // a string always encodes
	b := make([]byte, 0, size+len(underlay))
	b = append(b, `{"underlay":`...)
	b = append(b, underlay...)
	b = append(b, `,"networks":[`...)
	for i, id := range n.nets {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, ni.nets[id].rowJSON...)
	}
	b = append(b, `],"endpoints":[`...)
	first := true
	for _, id := range n.nets {
		if e := ni.nets[id]; len(e.endpointsJSON) > 0 {
			if !first {
				b = append(b, ',')
			}
			b = append(b, e.endpointsJSON...)
			first = false
		}
	}
	b = append(b, `],"services":[`...)
	for i, id := range svcs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, ni.svcs[id].json...)
	}
	return append(b, "]}\n"...)
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
