package netstack

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The routing mesh: every port a service publishes in ingress mode answers on all
// the node's addresses, whether or not a task of the service runs here. The node's
// namespace DNATs such a connection (arriving from elsewhere: prerouting; made by
// the node itself: output) to one of the service's ready endpoints on the ingress
// network, at random, and its target port. The table is "ip berth-ingress" in the
// node's namespace, apart from "inet berth" (which goes with the node's last task)
// because the mesh answers on nodes without tasks too:
//
//	chain prerouting (nat): fib daddr type local, tcp: th dport vmap @ports-tcp (udp: @ports-udp)
//	chain output (nat): the same, for destinations outside 127.0.0.0/8
//	chain postrouting (nat): ct status dnat, ip daddr @remote-backends: snat to <node's ingress address>
//	                         ct mark & 0x100000: snat to <node's ingress address>
//	map ports-tcp: <published port> : goto mesh-tcp-<port>
//	chain mesh-tcp-<port>: dnat to numgen random mod N map @mesh-tcp-<port> : <target port>
//	chain mesh-udp-<port>: ct mark set ct mark | 0x100000, then the same
//
// When the client's address is kept, and when not:
//
//   - TCP, and the chosen task runs on this node: no SNAT. The task sees the
//     client's own address and port. Its reply leaves through its ingress
//     interface (Setup routes what the task sends from its ingress address
//     through the ingress network's gateway, this node's ingress bridge, even
//     when its default route is on another network), so it comes back through
//     this namespace, whose conntrack undoes the DNAT.
//   - The chosen task runs on another node, or the protocol is UDP: SNAT to this
//     node's own address on the ingress network (the view's endpoint with no task
//     on this node). The task sees that address, not the client's. A reply from
//     another node has to come back over the overlay to this node, the only one
//     holding the connection's conntrack entry: one to the client's own address
//     would leave the task's node straight to the client, which would drop it.
//     A UDP server bound to all addresses answers from the address of its
//     default route, which a task on another network besides ingress has
//     elsewhere, and this node's conntrack would not know the answer; an answer
//     to the node's ingress address leaves by the ingress interface, from the
//     task's ingress address. Connections are spread over all the ready tasks,
//     local or not, so a TCP client keeps its address on the share of its
//     connections that reach a task on the node it called.
//   - Ports published in host mode (`mode: host`) are DNATed by the node the task
//     runs on, to that task only: the task always sees the client's address, and
//     only the nodes running a task answer.
//
// A node with no ingress address of its own in the view sends mesh connections to
// its local tasks only.

// meshPortsMap names the dispatch map of a protocol's published ports.
func meshPortsMap(proto string) string { return "ports-" + proto }

// remoteBackendsSet is the set of backends on other nodes, whose connections are
// SNATed.
const remoteBackendsSet = "remote-backends"

// ingressLayout is the routing mesh's table in the node's namespace, and its
// fixed rules SNATing to nodeAddr (none when it is not valid).
func ingressLayout(nodeAddr netip.Addr) (lbTable, []rule) {
	table := &nftables.Table{Name: "berth-ingress", Family: nftables.TableFamilyIPv4}
	ids := &setIDs{}
	natChain := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return &nftables.Chain{Name: name, Table: table, Type: nftables.ChainTypeNAT, Hooknum: hook, Priority: prio, Policy: &acceptPolicy}
	}
	prerouting := natChain("prerouting", nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
	output := natChain("output", nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	postrouting := natChain("postrouting", nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	remote := &nftables.Set{Table: table, Name: remoteBackendsSet, ID: ids.next(), KeyType: nftables.TypeIPAddr}
	l := lbTable{table: table, chains: []*nftables.Chain{prerouting, output, postrouting}, addrSets: []*nftables.Set{remote}, ids: ids}
	var fixed []rule
	for _, proto := range []string{"tcp", "udp"} {
		ports := &nftables.Set{Table: table, Name: meshPortsMap(proto), ID: ids.next(), IsMap: true, KeyType: nftables.TypeInetService, DataType: nftables.TypeVerdict}
		l.dispatch = append(l.dispatch, ports)
		dispatch := cat(
			[]expr.Any{
				&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
			},
			meta(expr.MetaKeyL4PROTO, expr.CmpOpEq, []byte{protoNumber(proto)}),
			[]expr.Any{
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				vmapLookup(ports),
			},
		)
		// As for host-mode ports (dnatExprs): a connection to 127.0.0.1 cannot
		// be sent off the loopback interface.
		fixed = append(fixed,
			rule{prerouting, dispatch},
			rule{output, cat(addrCmp(true, loopback4, expr.CmpOpNeq), dispatch)},
		)
	}
	if nodeAddr.Is4() {
		snat := []expr.Any{
			&expr.Immediate{Register: 1, Data: nodeAddr.AsSlice()},
			&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
		}
		fixed = append(fixed,
			rule{postrouting, cat(
				ctBits(expr.CtKeySTATUS, ctStatusDstNAT, expr.CmpOpNeq),
				[]expr.Any{
					&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
					&expr.Lookup{SourceRegister: 1, SetName: remote.Name, SetID: remote.ID},
				},
				snat,
			)},
			rule{postrouting, cat(ctBits(expr.CtKeyMARK, meshSNATMark, expr.CmpOpNeq), snat)},
		)
	}
	return l, fixed
}

// meshSNATMark is the conntrack mark bit of the routing mesh's connections that
// are SNATed whichever node their task is on: UDP ones. The rest of the mark is
// left as others set it.
const meshSNATMark = 1 << 20

func protoNumber(proto string) byte {
	if proto == "udp" {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}

// ingressEndpoints are the ingress network of the view, this node's own address
// on it (invalid when the view has none), and whether each address on it is on
// another node.
func ingressEndpoints(v View) (network string, nodeAddr netip.Addr, remote map[netip.Addr]bool) {
	for _, nw := range v.Networks {
		if nw.Ingress {
			network = nw.ID
			break
		}
	}
	remote = map[netip.Addr]bool{}
	if network == "" {
		return "", netip.Addr{}, remote
	}
	for _, e := range v.Endpoints {
		switch {
		case e.Network != network:
		case e.Node != v.Underlay:
			remote[e.Addr] = true
		case e.TaskID == "":
			nodeAddr = e.Addr
		}
	}
	return network, nodeAddr, remote
}

// ingressSpec is the routing mesh's table for the view, with the fixed rules
// that go with nodeAddr. Of two services publishing the same port (which the
// managers refuse), the one with the lower ID has it.
func ingressSpec(v View, network string, nodeAddr netip.Addr, remote map[netip.Addr]bool, fixed []rule) lbSpec {
	spec := lbSpec{balancers: map[string]balancer{}, sets: map[string][]netip.Addr{}}
	if network == "" {
		return spec
	}
	services := slices.Clone(v.Services)
	slices.SortFunc(services, func(a, b Service) int { return strings.Compare(a.ID, b.ID) })
	remoteBackends := map[netip.Addr]bool{}
	for _, s := range services {
		backends := readyBackends(v, s.ID, network)
		if !nodeAddr.IsValid() {
			backends = slices.DeleteFunc(backends, func(a netip.Addr) bool { return remote[a] })
		}
		for _, p := range s.IngressPorts {
			if p.Protocol != "tcp" && p.Protocol != "udp" || p.Published == 0 || p.Target == 0 {
				continue
			}
			name := "mesh-" + p.Protocol + "-" + strconv.Itoa(int(p.Published))
			if _, taken := spec.balancers[name]; taken {
				continue
			}
			b := balancer{
				dispatch: meshPortsMap(p.Protocol),
				key:      binaryutil.BigEndian.PutUint16(p.Published),
				backends: backends,
				port:     p.Target,
				about:    s.Name,
			}
			if p.Protocol == "udp" && nodeAddr.IsValid() {
				b.mark = meshSNATMark
			}
			spec.balancers[name] = b
			for _, a := range backends {
				if remote[a] {
					remoteBackends[a] = true
				}
			}
		}
	}
	if len(spec.balancers) == 0 {
		return spec
	}
	spec.fixed = fixed
	for a := range remoteBackends {
		spec.sets[remoteBackendsSet] = append(spec.sets[remoteBackendsSet], a)
	}
	slices.SortFunc(spec.sets[remoteBackendsSet], netip.Addr.Compare)
	return spec
}

// applyIngress programs the view's routing mesh in the node's namespace, in one
// transaction that changes only the ports whose backends changed; a view without
// ingress ports removes the table.
func (n *Netstack) applyIngress(_ context.Context, v View) error {
	network, nodeAddr, remote := ingressEndpoints(v)
	layout, fixed := ingressLayout(nodeAddr)
	spec := ingressSpec(v, network, nodeAddr, remote, fixed)

	n.lb.ingressMu.Lock()
	defer n.lb.ingressMu.Unlock()
	if n.lb.ingress != nil {
		if ok, err := layout.current(n.lb.ingress, spec); err != nil || ok {
			return err
		}
	}
	host, err := openHost(n.hostNS)
	if err != nil {
		return err
	}
	defer host.close()
	if n.lb.ingress == nil {
		if n.lb.ingress, err = layout.load(host.nft); err != nil {
			return err
		}
	}
	if len(spec.balancers) > 0 {
		// Published ports are forwarded into the ingress bridge.
		if err := enableForwarding(host.ns); err != nil {
			return err
		}
	}
	if err := layout.sync(host.nft, n.lb.ingress, spec); err != nil {
		n.lb.ingress = nil
		return fmt.Errorf("routing mesh: %w", err)
	}
	return nil
}
