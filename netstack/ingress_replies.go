package netstack

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ingressRepliesTable is the routing table, in a task's namespace, of what the
// task sends from its ingress address; the namespace is the task's alone, so the
// number clashes with nothing.
const ingressRepliesTable = 100

// ensureIngressReplies routes what the task sends from its address on the
// ingress network (the i-th attachment) through that network's gateway, this
// node's ingress bridge, whatever its default route. The routing mesh keeps the
// client's address on connections to a task on its node: the reply must come back
// through the node's namespace, whose conntrack entry undoes the DNAT; leaving by
// the default route of another network it would reach the node on another bridge
// (where a strict rp_filter drops it, the node not routing the ingress subnet
// there) or not at all.
func (t *taskNS) ensureIngressReplies(i int, att Attachment) error {
	name := "eth" + strconv.Itoa(i)
	link, err := t.nl.LinkByName(name)
	if err != nil {
		return fmt.Errorf("ingress replies: %s: %w", name, err)
	}
	route := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       ipNet(netip.PrefixFrom(netip.IPv4Unspecified(), 0)),
		Gw:        att.Network.Gateway.AsSlice(),
		Table:     ingressRepliesTable,
	}
	if err := t.nl.RouteReplace(route); err != nil {
		return fmt.Errorf("ingress replies: route via %s on %s: %w", att.Network.Gateway, name, err)
	}
	from := netip.PrefixFrom(att.Addr.Addr(), att.Addr.Addr().BitLen())
	rules, err := t.nl.RuleList(unix.AF_INET)
	if err != nil {
		return fmt.Errorf("ingress replies: list routing rules: %w", err)
	}
	found := false
	for _, r := range rules {
		if r.Table != ingressRepliesTable {
			continue
		}
		if src, ok := netipPrefix(r.Src); ok && src == from {
			found = true
			continue
		}
		// The task's former ingress address.
		if err := t.nl.RuleDel(&r); err != nil {
			return fmt.Errorf("ingress replies: delete stale routing rule: %w", err)
		}
	}
	if found {
		return nil
	}
	rule := netlink.NewRule()
	rule.Src = ipNet(from)
	rule.Table = ingressRepliesTable
	rule.Priority = ingressRepliesTable
	if err := t.nl.RuleAdd(rule); err != nil {
		return fmt.Errorf("ingress replies: routing rule from %s: %w", from.Addr(), err)
	}
	return nil
}
