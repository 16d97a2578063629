package netstack

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// berth keeps all its rules in one table of its own, so that it never edits what
// others wrote and leaving the cluster is deleting the table.
var berthTable = &nftables.Table{Name: "berth", Family: nftables.TableFamilyINet}

var (
	acceptPolicy = nftables.ChainPolicyAccept

	forwardChain = &nftables.Chain{
		Name: "forward", Table: berthTable, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &acceptPolicy,
	}
	postroutingChain = &nftables.Chain{
		Name: "postrouting", Table: berthTable, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &acceptPolicy,
	}
	preroutingChain = &nftables.Chain{
		Name: "prerouting", Table: berthTable, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest, Policy: &acceptPolicy,
	}
	outputChain = &nftables.Chain{
		Name: "output", Table: berthTable, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest, Policy: &acceptPolicy,
	}
	berthChains = []*nftables.Chain{forwardChain, postroutingChain, preroutingChain, outputChain}
)

// Every rule carries its owner in its comment: a bridge's rules go with the bridge,
// a task's with the task, and a restart replaces rather than duplicates them.
const (
	bridgeOwnerPrefix = "bridge:"
	taskOwnerPrefix   = "task:"
)

func bridgeOwner(bridge string) string { return bridgeOwnerPrefix + bridge }
func taskOwner(taskID string) string   { return taskOwnerPrefix + taskID }

// ownedRules are all the rules of one owner.
type ownedRules struct {
	owner string
	rules []rule
}

type rule struct {
	chain *nftables.Chain
	exprs []expr.Any
}

// Every rule's comment is its owner and the fingerprint of the owner's whole set of
// rules: "task:<id> <fingerprint>". A set that is in place is known by it, without
// comparing expressions as the kernel hands them back.
func ruleComment(r *nftables.Rule) (owner, fingerprint string) {
	s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
	owner, fingerprint, _ = strings.Cut(s, " ")
	return owner, fingerprint
}

func ruleOwner(r *nftables.Rule) string {
	owner, _ := ruleComment(r)
	return owner
}

// fingerprint identifies the rules' chains and expressions, as sent to the kernel.
func (o ownedRules) fingerprint() (string, error) {
	h := sha256.New()
	for _, r := range o.rules {
		fmt.Fprintf(h, "%s\x00%d\x00", r.chain.Name, len(r.exprs))
		for _, e := range r.exprs {
			b, err := expr.Marshal(byte(berthTable.Family), e)
			if err != nil {
				return "", fmt.Errorf("nftables rules of %s: %w", o.owner, err)
			}
			fmt.Fprintf(h, "%d\x00", len(b))
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}

// syncRules makes the owner's rules o's. Most calls find them in place (a bridge's,
// checked at every Setup on its network; those of a task without published ports,
// which are none) and only list rules: an nftables commit waits for the kernel's RCU
// grace periods, milliseconds that a node starting many tasks would pay one after
// the other. Otherwise it replaces them in one transaction, creating the table and
// its chains if needed.
func (h *hostNS) syncRules(o ownedRules) error {
	fp, err := o.fingerprint()
	if err != nil {
		return err
	}
	exists, err := h.tableExists()
	if err != nil {
		return err
	}
	if !exists && len(o.rules) == 0 {
		return nil
	}
	var have []*nftables.Rule
	listed := false
	if exists {
		var current bool
		have, current, err = h.ownerRules(o.owner, fp)
		if err == nil && current && len(have) == len(o.rules) {
			return nil
		}
		listed = err == nil
	}
	h.nft.AddTable(berthTable)
	for _, c := range berthChains {
		h.nft.AddChain(c)
	}
	if !listed {
		// A new table, or one whose chains someone deleted: make them first, to
		// list what is there.
		if err := h.nft.Flush(); err != nil {
			return fmt.Errorf("create nftables table inet %s: %w", berthTable.Name, err)
		}
		if have, _, err = h.ownerRules(o.owner, fp); err != nil {
			return err
		}
	}
	if err := h.queueDelete(o.owner, have); err != nil {
		return err
	}
	comment := userdata.AppendString(nil, userdata.TypeComment, o.owner+" "+fp)
	for _, r := range o.rules {
		if !dnatChain(r.chain) {
			h.nft.AddRule(&nftables.Rule{Table: berthTable, Chain: r.chain, Exprs: r.exprs, UserData: comment})
		}
	}
	// The newest owner's DNAT rules go first, in their order: the rules of a task
	// whose container exited, which its Teardown has yet to delete, must not catch
	// the connections meant for its replacement on the same port.
	for _, r := range slices.Backward(o.rules) {
		if dnatChain(r.chain) {
			h.nft.InsertRule(&nftables.Rule{Table: berthTable, Chain: r.chain, Exprs: r.exprs, UserData: comment})
		}
	}
	if err := h.nft.Flush(); err != nil {
		return fmt.Errorf("program nftables rules of %s: %w", o.owner, err)
	}
	return nil
}

// dnatChain says whether the chain's rules end in a DNAT, where the first that
// matches wins.
func dnatChain(c *nftables.Chain) bool { return c == preroutingChain || c == outputChain }

// ownerRules lists the owner's rules, and whether all of them carry fingerprint.
func (h *hostNS) ownerRules(owner, fingerprint string) (rules []*nftables.Rule, current bool, err error) {
	current = true
	err = h.eachRule(func(r *nftables.Rule) error {
		if o, fp := ruleComment(r); o == owner {
			rules = append(rules, r)
			current = current && fp == fingerprint
		}
		return nil
	})
	return rules, current, err
}

// queueDelete adds the deletion of the owner's rules to the next commit.
func (h *hostNS) queueDelete(owner string, rules []*nftables.Rule) error {
	for _, r := range rules {
		if err := h.nft.DelRule(r); err != nil {
			return fmt.Errorf("delete nftables rules of %s: %w", owner, err)
		}
	}
	return nil
}

// deleteRules deletes the owner's rules, if berth's table exists; an owner without
// rules costs no commit.
func (h *hostNS) deleteRules(owner string) error {
	exists, err := h.tableExists()
	if err != nil || !exists {
		return err
	}
	rules, _, err := h.ownerRules(owner, "")
	if err != nil || len(rules) == 0 {
		return err
	}
	if err := h.queueDelete(owner, rules); err != nil {
		return err
	}
	if err := h.nft.Flush(); err != nil {
		return fmt.Errorf("delete nftables rules of %s: %w", owner, err)
	}
	return nil
}

func (h *hostNS) eachRule(fn func(*nftables.Rule) error) error {
	for _, c := range berthChains {
		rules, err := h.nft.GetRules(berthTable, c)
		if err != nil {
			return fmt.Errorf("list nftables chain %s: %w", c.Name, err)
		}
		for _, r := range rules {
			if err := fn(r); err != nil {
				return fmt.Errorf("nftables chain %s: %w", c.Name, err)
			}
		}
	}
	return nil
}

func (h *hostNS) tableExists() (bool, error) {
	tables, err := h.nft.ListTablesOfFamily(berthTable.Family)
	if err != nil {
		return false, fmt.Errorf("list nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == berthTable.Name {
			return true, nil
		}
	}
	return false, nil
}

func (h *hostNS) deleteTable() error {
	exists, err := h.tableExists()
	if err != nil || !exists {
		return err
	}
	h.nft.DelTable(berthTable)
	if err := h.nft.Flush(); err != nil {
		return fmt.Errorf("delete nftables table inet %s: %w", berthTable.Name, err)
	}
	return nil
}

// deleteOrphanBridgeRules deletes the rules of bridges that are gone.
func (h *hostNS) deleteOrphanBridgeRules() error {
	exists, err := h.tableExists()
	if err != nil || !exists {
		return err
	}
	links, err := h.links()
	if err != nil {
		return fmt.Errorf("list interfaces: %w", err)
	}
	bridges := map[string]bool{}
	for _, l := range links {
		if l.Type() == "bridge" {
			bridges[l.Attrs().Name] = true
		}
	}
	if err := h.eachRule(func(r *nftables.Rule) error {
		if name, ok := strings.CutPrefix(ruleOwner(r), bridgeOwnerPrefix); ok && !bridges[name] {
			return h.nft.DelRule(r)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := h.nft.Flush(); err != nil {
		return fmt.Errorf("delete nftables rules of removed bridges: %w", err)
	}
	return nil
}

// taskIDs adds to ids the tasks that have a veth or a rule on the node.
func (h *hostNS) taskIDs(ids map[string]bool) error {
	if err := h.taskVethIDs(ids); err != nil {
		return err
	}
	exists, err := h.tableExists()
	if err != nil || !exists {
		return err
	}
	return h.eachRule(func(r *nftables.Rule) error {
		if id, ok := strings.CutPrefix(ruleOwner(r), taskOwnerPrefix); ok {
			ids[id] = true
		}
		return nil
	})
}

// bridgeRules isolates a network's bridge from berth's other bridges, masquerades
// what its tasks send elsewhere, and keeps an internal network to itself.
func bridgeRules(bridge string, nw Network) ownedRules {
	var rules []rule
	if nw.Internal {
		rules = append(rules,
			rule{forwardChain, cat(ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, bridge), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, bridge), drop())},
			rule{forwardChain, cat(ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, bridge), ifname(expr.MetaKeyIIFNAME, expr.CmpOpNeq, bridge), drop())},
		)
	} else {
		rules = append(rules,
			// Traffic between tasks of one network is bridged and never gets
			// here; what does is routed by the node between two networks. A
			// published port (host mode or the routing mesh) is everyone's: a
			// task of another network reaches it through a node address, as
			// anyone does, and its replies come back the same way.
			rule{forwardChain, cat(
				ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, bridge),
				ifnamePrefix(expr.MetaKeyOIFNAME, expr.CmpOpEq, bridgePrefix),
				ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, bridge),
				ctBits(expr.CtKeySTATUS, ctStatusDstNAT, expr.CmpOpEq),
				drop(),
			)},
			rule{postroutingChain, cat(
				addrMatch(false, nw.Subnet, expr.CmpOpEq),
				ifnamePrefix(expr.MetaKeyOIFNAME, expr.CmpOpNeq, bridgePrefix),
				[]expr.Any{&expr.Masq{}},
			)},
			// A task that reaches a published port of a task on its own
			// network (or its own) through a node address would get the
			// answer straight from that task's address, which it did not
			// call: make the node the peer of both. With br_netfilter such a
			// packet is bridged, and its input interface is not known here,
			// so the source address tells where it came from.
			rule{postroutingChain, cat(
				addrMatch(false, nw.Subnet, expr.CmpOpEq),
				ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, bridge),
				ctBits(expr.CtKeySTATUS, ctStatusDstNAT, expr.CmpOpNeq),
				[]expr.Any{&expr.Masq{}},
			)},
		)
	}
	return ownedRules{owner: bridgeOwner(bridge), rules: rules}
}

// dnat is one published port of a task, to the task's address.
type dnat struct {
	port PortMapping
	to   netip.Addr
}

// taskRules publishes a task's host-mode ports: for packets arriving from elsewhere
// (prerouting) and for connections the node makes to its own addresses (output).
func taskRules(taskID string, ports []dnat) ownedRules {
	var rules []rule
	for _, d := range ports {
		rules = append(rules,
			rule{preroutingChain, dnatExprs(d, false)},
			rule{outputChain, dnatExprs(d, true)},
		)
	}
	return ownedRules{owner: taskOwner(taskID), rules: rules}
}

// ctStatusDstNAT is IPS_DST_NAT, the conntrack status bit of a destination-NATed
// connection.
const ctStatusDstNAT = 1 << 5

var loopback4 = netip.MustParsePrefix("127.0.0.0/8")

func dnatExprs(d dnat, output bool) []expr.Any {
	var match []expr.Any
	if d.port.HostIP.IsValid() {
		match = addrMatch(true, netip.PrefixFrom(d.port.HostIP, 32), expr.CmpOpEq)
	} else {
		match = cat(
			meta(expr.MetaKeyNFPROTO, expr.CmpOpEq, []byte{unix.NFPROTO_IPV4}),
			[]expr.Any{
				&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
			},
		)
		if output {
			// A connection to 127.0.0.1 cannot be sent off the loopback
			// interface: that takes route_localnet, which would also let
			// packets from elsewhere reach the node's loopback services
			// (kube-proxy's CVE-2020-8558). A relay on 127.0.0.1 answers it
			// instead, as Docker's docker-proxy does.
			match = cat(match, addrMatch(true, loopback4, expr.CmpOpNeq))
		}
	}
	proto := byte(unix.IPPROTO_TCP)
	if d.port.Protocol == "udp" {
		proto = unix.IPPROTO_UDP
	}
	return cat(match,
		meta(expr.MetaKeyL4PROTO, expr.CmpOpEq, []byte{proto}),
		[]expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(d.port.Published)},
			&expr.Immediate{Register: 1, Data: d.to.AsSlice()},
			&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(d.port.Target)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2},
		},
	)
}

func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// ctBits matches connections with any of the conntrack key's bits set (op
// CmpOpNeq), or with none of them (CmpOpEq).
func ctBits(key expr.CtKey, bits uint32, op expr.CmpOp) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: key},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: op, Register: 1, Data: make([]byte, 4)},
	}
}

func drop() []expr.Any { return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}} }

func meta(key expr.MetaKey, op expr.CmpOp, data []byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: data},
	}
}

// ifname matches an interface name exactly: the kernel compares all 16 bytes of
// the NUL-padded name.
func ifname(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return meta(key, op, b)
}

// ifnamePrefix matches the start of an interface name, as nft's "bb-*" does.
func ifnamePrefix(key expr.MetaKey, op expr.CmpOp, prefix string) []expr.Any {
	return meta(key, op, []byte(prefix))
}

// addrMatch matches the source or destination address against a prefix, in the
// prefix's address family only.
func addrMatch(dst bool, p netip.Prefix, op expr.CmpOp) []expr.Any {
	proto := byte(unix.NFPROTO_IPV4)
	if p.Addr().Is6() {
		proto = unix.NFPROTO_IPV6
	}
	return cat(meta(expr.MetaKeyNFPROTO, expr.CmpOpEq, []byte{proto}), addrCmp(dst, p, op))
}

// addrCmp compares the packet's source or destination address with p, without the
// protocol check addrMatch puts first: what a table of one family (ip) needs, where
// a `meta nfproto` match makes the nft command line fail to list the ruleset.
func addrCmp(dst bool, p netip.Prefix, op expr.CmpOp) []expr.Any {
	offset := uint32(12)
	if dst {
		offset = 16
	}
	if p.Addr().Is6() {
		offset = 8
		if dst {
			offset = 24
		}
	}
	size := uint32(p.Addr().BitLen() / 8)
	out := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: size}}
	if p.Bits() < p.Addr().BitLen() {
		out = append(out, &expr.Bitwise{
			SourceRegister: 1, DestRegister: 1, Len: size,
			Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()), Xor: make([]byte, size),
		})
	}
	return append(out, &expr.Cmp{Op: op, Register: 1, Data: p.Masked().Addr().AsSlice()})
}
