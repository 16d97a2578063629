package netstack

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
)

// VIPs are balanced inside each task's own namespace, as Docker does with IPVS per
// sandbox: the task's nat output chain DNATs a VIP to one of the service's ready
// endpoints, so the task's own conntrack reverses the DNAT on the replies, which
// need no SNAT and come straight from the backend, on this node or another. The
// table is "ip berth-vip" in the task's namespace:
//
//	chain output (nat, output): ip daddr vmap @vips
//	map vips: <VIP> : goto vip-<VIP>     (comment: "<chain> <fingerprint> <service>")
//	chain vip-<VIP>: dnat to numgen random mod N map @vip-<VIP>
//	map vip-<VIP>: 0 : <backend>, 1 : <backend>, ...
//
// Any port and any protocol of the VIP goes to the same port of the backend, as
// with Swarm's VIPs. A service without a ready endpoint has, instead of the DNAT,
// a TCP reset and an ICMP port unreachable: its clients fail at once.

// loadBalancers is the state of the VIPs and the routing mesh.
type loadBalancers struct {
	// mu guards view and tasks (not what tasks' entries hold in state).
	mu sync.Mutex
	// view is the last view applied, nil before the first Apply.
	view *View
	// tasks are the tasks whose VIP step started, by ID.
	tasks map[string]*vipTask
	// ingressMu guards ingress, the routing mesh table's state (nil: read it
	// from the kernel first).
	ingressMu sync.Mutex
	ingress   *lbState
}

// vipTask is a task's VIP table.
type vipTask struct {
	// networks are the task's networks, guarded by loadBalancers.mu.
	networks []string
	// state is what the task's table holds, nil to read it from the kernel;
	// guarded by the task's lock.
	state *lbState
}

// vipLayout is the VIP table of a task's namespace. The objects are made afresh
// per use: the nftables library numbers a set the first time it is added.
func vipLayout() (lbTable, []rule) {
	table := &nftables.Table{Name: "berth-vip", Family: nftables.TableFamilyIPv4}
	output := &nftables.Chain{
		Name: "output", Table: table, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest, Policy: &acceptPolicy,
	}
	vips := &nftables.Set{Table: table, Name: "vips", IsMap: true, KeyType: nftables.TypeIPAddr, DataType: nftables.TypeVerdict}
	dispatch := rule{output, []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		vmapLookup(vips),
	}}
	return lbTable{table: table, chains: []*nftables.Chain{output}, dispatch: []*nftables.Set{vips}}, []rule{dispatch}
}

// vmapLookup jumps where the verdict map sends register 1's value.
func vmapLookup(m *nftables.Set) *expr.Lookup {
	return &expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: m.Name, SetID: m.ID}
}

// vipSpec is what the VIP table of a task on networks holds: a balancer per VIP of
// every service (not dnsrr) on a network the task shares with it.
func vipSpec(v View, networks []string, fixed []rule) lbSpec {
	spec := lbSpec{balancers: map[string]balancer{}}
	for _, s := range v.Services {
		if s.DNSRR {
			continue
		}
		for nw, vip := range s.VIPs {
			if !vip.Is4() || !slices.Contains(networks, nw) {
				continue
			}
			spec.balancers[vipChainName(vip)] = balancer{
				dispatch: "vips",
				key:      vip.AsSlice(),
				backends: readyBackends(v, s.ID, nw),
				about:    s.Name,
			}
		}
	}
	if len(spec.balancers) > 0 {
		spec.fixed = fixed
	}
	return spec
}

func vipChainName(vip netip.Addr) string {
	return "vip-" + strings.ReplaceAll(vip.String(), ".", "-")
}

// vipStep is the task step that gives a task its VIP table: at Setup, and again
// when a restarted daemon finds the task.
func (n *Netstack) vipStep() taskStep {
	return taskStep{name: "vip", start: n.startVIPs, stop: n.stopVIPs}
}

// startVIPs records the task's networks and, when a view was applied already,
// programs the task's table. Before the first view (a restarted daemon) the
// table is left as it is: the first Apply compares it with the view.
func (n *Netstack) startVIPs(_ context.Context, taskID string, networks []string) error {
	n.lb.mu.Lock()
	if n.lb.tasks == nil {
		n.lb.tasks = map[string]*vipTask{}
	}
	t := n.lb.tasks[taskID]
	if t == nil {
		t = &vipTask{}
		n.lb.tasks[taskID] = t
	}
	t.networks = slices.Clone(networks)
	view := n.lb.view
	n.lb.mu.Unlock()
	if view == nil {
		return nil
	}
	return n.syncVIPs(taskID, t, networks, *view)
}

func (n *Netstack) stopVIPs(taskID string) {
	n.lb.mu.Lock()
	delete(n.lb.tasks, taskID)
	n.lb.mu.Unlock()
}

// applyVIPs programs the view's VIPs in every task's namespace: one transaction
// per namespace whose balancers changed, none for the others.
func (n *Netstack) applyVIPs(_ context.Context, v View) error {
	n.lb.mu.Lock()
	n.lb.view = &v
	ids := make([]string, 0, len(n.lb.tasks))
	for id := range n.lb.tasks {
		ids = append(ids, id)
	}
	n.lb.mu.Unlock()
	slices.Sort(ids)
	var errs []error
	for _, id := range ids {
		errs = append(errs, n.applyTaskVIPs(id, v))
	}
	return errors.Join(errs...)
}

// applyTaskVIPs programs one task's VIPs under the task's lock, unless the task
// was torn down meanwhile.
func (n *Netstack) applyTaskVIPs(taskID string, v View) error {
	defer n.tasks.lock(taskID)()
	n.lb.mu.Lock()
	t := n.lb.tasks[taskID]
	var networks []string
	if t != nil {
		networks = t.networks
	}
	n.lb.mu.Unlock()
	if t == nil {
		return nil
	}
	return n.syncVIPs(taskID, t, networks, v)
}

// syncVIPs makes the task's table hold the view's VIPs; call it with the task's
// lock held.
func (n *Netstack) syncVIPs(taskID string, t *vipTask, networks []string, v View) error {
	layout, fixed := vipLayout()
	spec := vipSpec(v, networks, fixed)
	if t.state != nil {
		if ok, err := layout.current(t.state, spec); err != nil || ok {
			return err
		}
	}
	ns, err := netns.GetFromPath(n.Sandbox(taskID).NetNSPath)
	if err != nil {
		return fmt.Errorf("task %s: open network namespace: %w", taskID, err)
	}
	defer ns.Close()
	nft, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return fmt.Errorf("task %s: nftables: %w", taskID, err)
	}
	if t.state == nil {
		if t.state, err = layout.load(nft); err != nil {
			return fmt.Errorf("task %s: %w", taskID, err)
		}
	}
	if err := layout.sync(nft, t.state, spec); err != nil {
		t.state = nil
		return fmt.Errorf("task %s: VIPs: %w", taskID, err)
	}
	return nil
}
