package netstack

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// lbTable is the layout of a load-balancing table, as kube-proxy's nftables mode
// lays out its own: base chains whose few rules are fixed, which dispatch through
// named verdict maps to a chain per balancer; that chain picks a backend with
// `numgen random mod N` from a named map of the balancer's own. What changes (a
// balancer's backends, which balancers there are) changes only those named
// objects, never the base chains, so that an update costs O(changed) and leaves the
// other balancers' objects alone.
type lbTable struct {
	table *nftables.Table
	// chains are the base chains, holding lbSpec.fixed.
	chains []*nftables.Chain
	// dispatch are the verdict maps that lead to the balancers' chains.
	dispatch []*nftables.Set
	// addrSets are address sets the fixed rules look up.
	addrSets []*nftables.Set
}

// lbSpec is what a load-balancing table should hold.
type lbSpec struct {
	fixed []rule
	// balancers are by name, which names their chain and backend map.
	balancers map[string]balancer
	// sets are the elements of the table's address sets, by set name.
	sets map[string][]netip.Addr
}

// balancer spreads the connections that its dispatch map sends it over its backends.
type balancer struct {
	// dispatch names the verdict map, key is the balancer's key there.
	dispatch string
	key      []byte
	// backends are sorted and distinct; none rejects connections at once.
	backends []netip.Addr
	// port is the destination port after DNAT; zero keeps the connection's.
	port uint16
	// about names what the balancer stands for, for whoever lists the table.
	about string
}

// fingerprint identifies what the balancer's objects hold.
func (b balancer) fingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "%x %d", b.key, b.port)
	for _, a := range b.backends {
		fmt.Fprintf(h, " %s", a)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// lbState is what a table holds, as last programmed or read back from the kernel.
type lbState struct {
	exists bool
	// fixed is the fingerprint of the base chains' rules, fixedCount their number.
	fixed      string
	fixedCount int
	balancers  map[string]lbEntry
	sets       map[string]map[netip.Addr]bool
}

// lbEntry is a balancer as its dispatch map element records it: the element's
// comment is "<name> <fingerprint> <about>".
type lbEntry struct {
	dispatch    string
	key         []byte
	fingerprint string
}

// load reads the table's state back from the kernel: what a restarted daemon, or
// one whose last commit failed, compares the wanted state with.
func (l lbTable) load(nft *nftables.Conn) (*lbState, error) {
	st := &lbState{balancers: map[string]lbEntry{}, sets: map[string]map[netip.Addr]bool{}}
	tables, err := nft.ListTablesOfFamily(l.table.Family)
	if err != nil {
		return nil, fmt.Errorf("list nftables tables: %w", err)
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == l.table.Name }) {
		return st, nil
	}
	st.exists = true
	fps := map[string]bool{}
	for _, c := range l.chains {
		rules, err := nft.GetRules(l.table, c)
		if err != nil {
			// A chain someone deleted: made again with the fixed rules.
			st.exists = false
			continue
		}
		for _, r := range rules {
			fp, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			fps[fp] = true
			st.fixedCount++
		}
	}
	if len(fps) == 1 {
		for fp := range fps {
			st.fixed = fp
		}
	}
	for _, m := range l.dispatch {
		elems, err := nft.GetSetElements(m)
		if err != nil {
			st.exists = false
			continue
		}
		for _, e := range elems {
			fields := strings.Fields(e.Comment)
			if len(fields) < 2 {
				continue
			}
			st.balancers[fields[0]] = lbEntry{dispatch: m.Name, key: e.Key, fingerprint: fields[1]}
		}
	}
	for _, s := range l.addrSets {
		elems, err := nft.GetSetElements(s)
		if err != nil {
			st.exists = false
			continue
		}
		have := map[netip.Addr]bool{}
		for _, e := range elems {
			if a, ok := netip.AddrFromSlice(e.Key); ok {
				have[a] = true
			}
		}
		st.sets[s.Name] = have
	}
	return st, nil
}

// sync makes the table hold want, in one transaction, changing only what differs
// from st; it updates st to what it committed. A table with nothing to hold is
// deleted. After an error st is stale: load it again.
func (l lbTable) sync(nft *nftables.Conn, st *lbState, want lbSpec) error {
	if len(want.balancers) == 0 && len(want.fixed) == 0 {
		if st.exists {
			nft.DelTable(l.table)
			if err := nft.Flush(); err != nil {
				return fmt.Errorf("delete nftables table %s: %w", l.table.Name, err)
			}
		}
		*st = lbState{balancers: map[string]lbEntry{}, sets: map[string]map[netip.Addr]bool{}}
		return nil
	}
	if ok, err := l.current(st, want); err != nil || ok {
		return err
	}
	queued := false
	if !st.exists {
		l.create(nft)
		queued = true
	}
	fixedFP, err := fixedFingerprint(want.fixed)
	if err != nil {
		return err
	}
	if st.fixed != fixedFP || st.fixedCount != len(want.fixed) {
		l.replaceFixed(nft, want.fixed, fixedFP)
		queued = true
	}
	for name, b := range want.balancers {
		if st.holds(name, b) {
			continue
		}
		if err := l.putBalancer(nft, st, name, b, b.fingerprint()); err != nil {
			return err
		}
		queued = true
	}
	for name, e := range st.balancers {
		if _, ok := want.balancers[name]; !ok {
			if err := l.deleteBalancer(nft, name, e); err != nil {
				return err
			}
			queued = true
		}
	}
	for _, s := range l.addrSets {
		changed, err := syncAddrSet(nft, s, st.sets[s.Name], want.sets[s.Name])
		if err != nil {
			return err
		}
		queued = queued || changed
	}
	if !queued {
		return nil
	}
	if err := nft.Flush(); err != nil {
		return fmt.Errorf("program nftables table %s: %w", l.table.Name, err)
	}
	l.committed(st, want, fixedFP)
	return nil
}

// current says whether st holds want already: a sync would commit nothing. It
// spares the caller the opening of a namespace.
func (l lbTable) current(st *lbState, want lbSpec) (bool, error) {
	if len(want.balancers) == 0 && len(want.fixed) == 0 {
		return !st.exists, nil
	}
	fixedFP, err := fixedFingerprint(want.fixed)
	if err != nil {
		return false, err
	}
	if !st.exists || st.fixed != fixedFP || st.fixedCount != len(want.fixed) || len(st.balancers) != len(want.balancers) {
		return false, nil
	}
	for name, b := range want.balancers {
		if !st.holds(name, b) {
			return false, nil
		}
	}
	for _, s := range l.addrSets {
		have, wanted := st.sets[s.Name], want.sets[s.Name]
		if len(have) != len(wanted) || slices.ContainsFunc(wanted, func(a netip.Addr) bool { return !have[a] }) {
			return false, nil
		}
	}
	return true, nil
}

// holds says whether the balancer is in place as b.
func (st *lbState) holds(name string, b balancer) bool {
	e, ok := st.balancers[name]
	return ok && e.fingerprint == b.fingerprint() && e.dispatch == b.dispatch && string(e.key) == string(b.key)
}

// committed records in st what sync just committed.
func (l lbTable) committed(st *lbState, want lbSpec, fixedFP string) {
	st.exists = true
	st.fixed, st.fixedCount = fixedFP, len(want.fixed)
	st.balancers = make(map[string]lbEntry, len(want.balancers))
	for name, b := range want.balancers {
		st.balancers[name] = lbEntry{dispatch: b.dispatch, key: b.key, fingerprint: b.fingerprint()}
	}
	st.sets = map[string]map[netip.Addr]bool{}
	for _, s := range l.addrSets {
		have := map[netip.Addr]bool{}
		for _, a := range want.sets[s.Name] {
			have[a] = true
		}
		st.sets[s.Name] = have
	}
}

// create queues the table with its base chains and maps; none of them is
// replaced if it exists.
func (l lbTable) create(nft *nftables.Conn) {
	nft.AddTable(l.table)
	for _, c := range l.chains {
		nft.AddChain(c)
	}
	for _, s := range slices.Concat(l.dispatch, l.addrSets) {
		// AddSet fails only on an anonymous set.
		_ = nft.AddSet(s, nil)
	}
}

func (l lbTable) replaceFixed(nft *nftables.Conn, fixed []rule, fp string) {
	for _, c := range l.chains {
		nft.FlushChain(c)
	}
	comment := userdata.AppendString(nil, userdata.TypeComment, fp)
	for _, r := range fixed {
		nft.AddRule(&nftables.Rule{Table: l.table, Chain: r.chain, Exprs: r.exprs, UserData: comment})
	}
}

func fixedFingerprint(fixed []rule) (string, error) {
	fp, err := ownedRules{owner: "fixed", rules: fixed}.fingerprint()
	if err != nil {
		return "", err
	}
	return "fixed:" + fp, nil
}

// putBalancer queues the balancer's objects: made if new, emptied and filled
// again if changed, and its dispatch element replaced (the comment carries the
// fingerprint).
func (l lbTable) putBalancer(nft *nftables.Conn, st *lbState, name string, b balancer, fp string) error {
	dispatch := l.dispatchMap(b.dispatch)
	if dispatch == nil {
		return fmt.Errorf("balancer %s: no dispatch map %q in table %s", name, b.dispatch, l.table.Name)
	}
	chain := &nftables.Chain{Name: name, Table: l.table}
	backends := l.backendMap(name)
	if old, ok := st.balancers[name]; ok {
		nft.FlushChain(chain)
		nft.FlushSet(backends)
		if err := nft.SetDeleteElements(l.dispatchMap(old.dispatch), []nftables.SetElement{{Key: old.key}}); err != nil {
			return fmt.Errorf("balancer %s: %w", name, err)
		}
	} else {
		nft.AddChain(chain)
		if err := nft.AddSet(backends, nil); err != nil {
			return fmt.Errorf("balancer %s: %w", name, err)
		}
	}
	elems := make([]nftables.SetElement, len(b.backends))
	for i, a := range b.backends {
		elems[i] = nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(uint32(i)), Val: a.AsSlice()}
	}
	if len(elems) > 0 {
		if err := nft.SetAddElements(backends, elems); err != nil {
			return fmt.Errorf("balancer %s: backends: %w", name, err)
		}
	}
	for _, exprs := range balancerRules(backends, b) {
		nft.AddRule(&nftables.Rule{Table: l.table, Chain: chain, Exprs: exprs})
	}
	elem := nftables.SetElement{
		Key:         b.key,
		VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: name},
		Comment:     strings.TrimSpace(name + " " + fp + " " + b.about),
	}
	if err := nft.SetAddElements(dispatch, []nftables.SetElement{elem}); err != nil {
		return fmt.Errorf("balancer %s: dispatch: %w", name, err)
	}
	return nil
}

// deleteBalancer queues the removal of the balancer: its dispatch element first,
// which is what holds its chain.
func (l lbTable) deleteBalancer(nft *nftables.Conn, name string, e lbEntry) error {
	if dispatch := l.dispatchMap(e.dispatch); dispatch != nil {
		if err := nft.SetDeleteElements(dispatch, []nftables.SetElement{{Key: e.key}}); err != nil {
			return fmt.Errorf("balancer %s: %w", name, err)
		}
	}
	nft.DelChain(&nftables.Chain{Name: name, Table: l.table})
	nft.DelSet(l.backendMap(name))
	return nil
}

func (l lbTable) dispatchMap(name string) *nftables.Set {
	for _, m := range l.dispatch {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// backendMap is a balancer's map from numgen's result to a backend's address.
func (l lbTable) backendMap(name string) *nftables.Set {
	return &nftables.Set{Table: l.table, Name: name, IsMap: true, KeyType: nftables.TypeMark, DataType: nftables.TypeIPAddr}
}

// balancerRules DNAT to a random backend, or, without one, refuse at once: a TCP
// reset, an ICMP port unreachable for the rest, rather than a connection that
// waits for its timeout.
func balancerRules(backends *nftables.Set, b balancer) [][]expr.Any {
	if len(b.backends) == 0 {
		return [][]expr.Any{
			cat(meta(expr.MetaKeyL4PROTO, expr.CmpOpEq, []byte{unix.IPPROTO_TCP}),
				[]expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}}),
			{&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: icmpPortUnreachable}},
		}
	}
	exprs := []expr.Any{
		&expr.Numgen{Register: 1, Modulus: uint32(len(b.backends)), Type: unix.NFT_NG_RANDOM},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: backends.Name, SetID: backends.ID},
	}
	nat := &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1}
	if b.port != 0 {
		exprs = append(exprs, &expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(b.port)})
		nat.RegProtoMin = 2
	}
	return [][]expr.Any{append(exprs, nat)}
}

// icmpPortUnreachable is ICMP's destination unreachable code 3 (RFC 792).
const icmpPortUnreachable = 3

// syncAddrSet queues the changes that make the set hold want.
func syncAddrSet(nft *nftables.Conn, s *nftables.Set, have map[netip.Addr]bool, want []netip.Addr) (changed bool, err error) {
	wanted := map[netip.Addr]bool{}
	var add, del []nftables.SetElement
	for _, a := range want {
		wanted[a] = true
		if !have[a] {
			add = append(add, nftables.SetElement{Key: a.AsSlice()})
		}
	}
	for _, a := range slices.SortedFunc(maps.Keys(have), netip.Addr.Compare) {
		if !wanted[a] {
			del = append(del, nftables.SetElement{Key: a.AsSlice()})
		}
	}
	if len(add) > 0 {
		if err := nft.SetAddElements(s, add); err != nil {
			return false, fmt.Errorf("set %s: %w", s.Name, err)
		}
	}
	if len(del) > 0 {
		if err := nft.SetDeleteElements(s, del); err != nil {
			return false, fmt.Errorf("set %s: %w", s.Name, err)
		}
	}
	return len(add)+len(del) > 0, nil
}

// readyBackends are the ready endpoints of the service on the network, sorted and
// distinct.
func readyBackends(v View, serviceID, network string) []netip.Addr {
	var out []netip.Addr
	for _, e := range v.Endpoints {
		if e.Ready && e.TaskID != "" && e.ServiceID == serviceID && e.Network == network {
			out = append(out, e.Addr)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}
