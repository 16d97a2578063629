package agent

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/netstack"
)

// maxNetworkRetry bounds the backoff of the network watch and of a failing Apply.
const maxNetworkRetry = 30 * time.Second

// watchNetwork keeps the node's data plane on the managers' view of the cluster's
// networks: it watches the node's network view (a blocking query) and applies every
// new one, whole. While the managers are unreachable the last view applied stays
// programmed: tasks keep reaching each other on what was known. An Apply that fails
// is tried again, with backoff, until it succeeds or a newer view replaces it.
func (a *Agent) watchNetwork(ctx context.Context) {
	var (
		index   uint64
		applied *api.NetworkView // the last view Apply took
		pending *api.NetworkView // a view still to apply
		retry   = a.cfg.NetworkRetry
	)
	for ctx.Err() == nil {
		wait := a.cfg.Wait
		if pending != nil {
			if err := a.applyView(ctx, pending); err != nil {
				a.cfg.Logger.Warn("agent: applying the network view failed; retrying", "error", err, "retry", retry)
				// The watch's wait is the retry's delay: a newer view ends it early.
				wait, retry = retry, min(2*retry, maxNetworkRetry)
			} else {
				applied, pending, retry = pending, nil, a.cfg.NetworkRetry
			}
		}
		v, meta, err := a.cfg.API.NodeNetworkView(ctx, api.Query{Index: index, Wait: wait})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			a.cfg.Logger.Warn("agent: watching the node's networks failed; keeping the last view", "error", err, "retry", retry)
			// Indexes of views are each manager's own: after an error the next
			// answer may come from another manager.
			index = 0
			if !sleep(ctx, retry) {
				return
			}
			retry = min(2*retry, maxNetworkRetry)
			continue
		}
		index = meta.Index
		if pending == nil && applied != nil && reflect.DeepEqual(v, applied) {
			continue
		}
		pending = v
	}
}

func (a *Agent) applyView(ctx context.Context, w *api.NetworkView) error {
	v, err := netView(w)
	if err != nil {
		return err
	}
	return a.cfg.Network.Apply(ctx, v)
}

// netView converts the wire view into netstack's. A view it cannot convert is a
// manager's fault: it is refused whole rather than applied in part.
func netView(w *api.NetworkView) (netstack.View, error) {
	var v netstack.View
	var err error
	if v.Underlay, err = netip.ParseAddr(w.Underlay); err != nil {
		return v, fmt.Errorf("network view: underlay %q: %w", w.Underlay, err)
	}
	for _, n := range w.Networks {
		nw, err := netNetwork(n)
		if err != nil {
			return v, fmt.Errorf("network view: %w", err)
		}
		v.Networks = append(v.Networks, nw)
	}
	for _, e := range w.Endpoints {
		ep, err := netEndpoint(e)
		if err != nil {
			return v, fmt.Errorf("network view: endpoint %s/%s on network %s: %w", e.NodeID, e.TaskID, e.Network, err)
		}
		v.Endpoints = append(v.Endpoints, ep)
	}
	for _, s := range w.Services {
		svc, err := netService(s)
		if err != nil {
			return v, fmt.Errorf("network view: service %s: %w", s.Name, err)
		}
		v.Services = append(v.Services, svc)
	}
	return v, nil
}

// netNetwork converts a network row, with its VNI and ingress flag.
func netNetwork(n *model.Network) (netstack.Network, error) {
	subnet, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return netstack.Network{}, fmt.Errorf("network %s: subnet %q: %w", n.Name, n.Subnet, err)
	}
	gw, err := netip.ParseAddr(n.Gateway)
	if err != nil {
		return netstack.Network{}, fmt.Errorf("network %s: gateway %q: %w", n.Name, n.Gateway, err)
	}
	return netstack.Network{ID: n.ID, Name: n.Name, Subnet: subnet, Gateway: gw, Internal: n.Internal,
		VNI: n.VNI, Ingress: n.Ingress}, nil
}

func netEndpoint(e api.NetworkEndpoint) (netstack.Endpoint, error) {
	ep := netstack.Endpoint{Network: e.Network, TaskID: e.TaskID, ServiceID: e.ServiceID, NodeID: e.NodeID, Ready: e.Ready}
	var err error
	if ep.Addr, err = netip.ParseAddr(e.Addr); err != nil {
		return ep, fmt.Errorf("address %q: %w", e.Addr, err)
	}
	if ep.Node, err = netip.ParseAddr(e.Node); err != nil {
		return ep, fmt.Errorf("node address %q: %w", e.Node, err)
	}
	ep.MAC, err = parseMAC(e.MAC)
	return ep, err
}

func netService(s api.NetworkService) (netstack.Service, error) {
	out := netstack.Service{ID: s.ID, Name: s.Name, ShortName: s.ShortName, Stack: s.Stack, DNSRR: s.DNSRR, Aliases: s.Aliases}
	for id, vip := range s.VIPs {
		addr, err := netip.ParseAddr(vip)
		if err != nil {
			return out, fmt.Errorf("VIP on network %s %q: %w", id, vip, err)
		}
		if out.VIPs == nil {
			out.VIPs = map[string]netip.Addr{}
		}
		out.VIPs[id] = addr
	}
	for _, p := range s.IngressPorts {
		m, ok := portMapping(p)
		if !ok {
			return out, fmt.Errorf("ingress port %d:%d is out of range", p.Published, p.Target)
		}
		out.IngressPorts = append(out.IngressPorts, m)
	}
	return out, nil
}
