package scheduler

import (
	"net/netip"
	"strings"

	"github.com/berthd/berth/spec"
)

// constraintKind says which node field a constraint reads, decided once per request
// so that matching a node is a switch and a lookup.
type constraintKind uint8

const (
	keyInvalid constraintKind = iota // did not parse: fails every node
	keyNodeID
	keyHostname
	keyRole
	keyOS
	keyArch
	keyIP
	keyNodeLabel
	keyEngineLabel
)

// constraint is a placement constraint compiled for matching.
type constraint struct {
	kind  constraintKind
	equal bool   // == rather than !=
	label string // label name, for label keys
	value string
	ip    netip.Prefix // node.ip: the CIDR, or the address as a full-length prefix
	// text names the constraint in reasons: its canonical form, or the text as
	// written when it does not parse.
	text string
}

const (
	nodeLabelPrefix   = "node.labels."
	engineLabelPrefix = "engine.labels."
)

func compileConstraint(expr string) constraint {
	c, err := spec.ParseConstraint(expr)
	if err != nil {
		return constraint{kind: keyInvalid, text: strings.TrimSpace(expr)}
	}
	out := constraint{equal: c.Op == spec.OpEqual, value: c.Value, text: c.String()}
	switch {
	case c.Key == "node.id":
		out.kind = keyNodeID
	case c.Key == "node.hostname":
		out.kind = keyHostname
	case c.Key == "node.role":
		out.kind = keyRole
	case c.Key == "node.platform.os":
		out.kind = keyOS
	case c.Key == "node.platform.arch":
		out.kind = keyArch
	case c.Key == "node.ip":
		out.kind = keyIP
		if p, err := netip.ParsePrefix(c.Value); err == nil {
			out.ip = unmapPrefix(p)
		} else if a, err := netip.ParseAddr(c.Value); err == nil {
			a = a.WithZone("").Unmap()
			out.ip = netip.PrefixFrom(a, a.BitLen())
		}
		if !out.ip.IsValid() {
			out.kind = keyInvalid
		}
	case strings.HasPrefix(c.Key, nodeLabelPrefix):
		out.kind, out.label = keyNodeLabel, c.Key[len(nodeLabelPrefix):]
	case strings.HasPrefix(c.Key, engineLabelPrefix):
		out.kind, out.label = keyEngineLabel, c.Key[len(engineLabelPrefix):]
	default:
		// A key ParseConstraint accepts but this switch does not know: a new key added
		// to spec without teaching the scheduler. Failing loudly in the reason beats
		// ignoring the constraint.
		out.kind = keyInvalid
	}
	return out
}

// unmapPrefix reads an IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) as the IPv4
// prefix it stands for (10.0.0.0/8), since node addresses are kept unmapped.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// match reports whether node n satisfies c. Values compare case-insensitively and a
// missing label reads as "", both as in Swarm.
func (c *constraint) match(n *NodeInfo) bool {
	var v string
	switch c.kind {
	case keyInvalid:
		return false
	case keyIP:
		return (n.Addr.IsValid() && c.ip.Contains(n.Addr)) == c.equal
	case keyNodeID:
		v = n.ID
	case keyHostname:
		v = n.Hostname
	case keyRole:
		v = string(n.Role)
	case keyOS:
		v = n.Platform.OS
	case keyArch:
		v = n.Platform.Arch
	case keyNodeLabel:
		v = n.Labels[c.label]
	case keyEngineLabel:
		v = n.EngineLabels[c.label]
	}
	return strings.EqualFold(v, c.value) == c.equal
}

// preference is one spread level: the label whose value groups nodes.
type preference struct {
	engine bool
	label  string
	valid  bool // false: put every node in one group (no spreading at this level)
}

func compilePreference(spread string) preference {
	key, err := spec.ParsePreference(spread)
	if err != nil {
		return preference{}
	}
	if name, ok := strings.CutPrefix(key, nodeLabelPrefix); ok {
		return preference{label: name, valid: true}
	}
	if name, ok := strings.CutPrefix(key, engineLabelPrefix); ok {
		return preference{engine: true, label: name, valid: true}
	}
	return preference{}
}

// value is n's group at this level; nodes without the label share the group "".
func (p *preference) value(n *NodeInfo) string {
	switch {
	case !p.valid:
		return ""
	case p.engine:
		return n.EngineLabels[p.label]
	default:
		return n.Labels[p.label]
	}
}
