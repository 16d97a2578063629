package netstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// View is what a node's data plane is told of the cluster's networks: the networks
// its tasks (or its own ingress endpoint) are on, every endpoint on those networks
// across the cluster, and the services reachable over them. The agent builds it
// from its watch on the managers (never raft) and hands every new one to Apply,
// whole; netstack programs the difference from the one it applied before.
type View struct {
	// Underlay is this node's own underlay address: the source of its VXLAN
	// packets, and where other nodes send theirs.
	Underlay netip.Addr
	// VXLANPort is the UDP port of VXLAN (0 means 4789, the IANA port).
	VXLANPort uint16
	// Networks are the networks with an endpoint on this node. A network with a
	// VNI is an overlay: its bridge gets a VXLAN device.
	Networks []Network
	// Endpoints are the addresses on those networks, on this node and on
	// others: tasks' attachments and nodes' own ingress endpoints.
	Endpoints []Endpoint
	// Services are the services with an endpoint on those networks.
	Services []Service
}

// Endpoint is one address on a network: a task's attachment, or a node's own
// address (its ingress endpoint, TaskID empty).
type Endpoint struct {
	// Network is the network's ID.
	Network string
	// TaskID is the task's ID; empty for a node's own endpoint.
	TaskID string
	// ServiceID is the task's service (empty for a node's endpoint).
	ServiceID string
	// NodeID is the node the endpoint is on.
	NodeID string
	Addr   netip.Addr
	// MAC is the endpoint's hardware address; nil derives it from Addr
	// (ipam.MAC), as Setup does.
	MAC net.HardwareAddr
	// Node is the underlay address of the node the endpoint is on: where VXLAN
	// packets for it go. It equals View.Underlay for this node's endpoints.
	Node netip.Addr
	// Ready says the task is running (healthy, when it has a health check) and
	// meant to keep running: only ready endpoints are in DNS answers and behind
	// VIPs and the routing mesh. Every endpoint, ready or not, is reachable by
	// address (its forwarding entries are programmed as soon as it is placed).
	Ready bool
}

// Service is a service as DNS, VIPs and the routing mesh see it.
type Service struct {
	ID string
	// Name is the cluster-wide name (`<stack>_<service>`), ShortName the name in
	// the stack file; both resolve.
	Name, ShortName string
	Stack           string
	// DNSRR is endpoint_mode dnsrr: the names resolve to the ready tasks'
	// addresses and the service has no VIP.
	DNSRR bool
	// VIPs are the service's virtual IPs, by network ID.
	VIPs map[string]netip.Addr
	// Aliases are the service's network aliases, by network ID.
	Aliases map[string][]string
	// IngressPorts are the ports published in ingress mode: every node answers
	// on them (the routing mesh). HostIP is unused.
	IngressPorts []PortMapping
}

// Apply programs the node's share of the view: the overlay's forwarding
// entries, the embedded DNS's records, the VIPs' load balancing in the tasks'
// namespaces and the routing mesh in the node's. Each step goes on when another
// fails; Apply returns their errors joined, and the next Apply tries again.
func (n *Netstack) Apply(ctx context.Context, v View) error {
	if err := checkView(v); err != nil {
		return fmt.Errorf("netstack: apply view: %w", err)
	}
	var errs []error
	for _, step := range n.applySteps() {
		if err := step.apply(ctx, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", step.name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("netstack: apply view: %w", err)
	}
	return nil
}

// applyStep is one concern of Apply, named in its errors.
type applyStep struct {
	name  string
	apply func(context.Context, View) error
}

// checkView refuses a view whose addresses cannot be programmed.
func checkView(v View) error {
	for _, e := range v.Endpoints {
		if !e.Addr.Is4() {
			return fmt.Errorf("%w: endpoint %s on network %s: address %s is not IPv4", ErrInvalid, e.TaskID, e.Network, e.Addr)
		}
		if !e.Node.IsValid() {
			return fmt.Errorf("%w: endpoint %s on network %s has no node address", ErrInvalid, e.TaskID, e.Network)
		}
		if e.MAC != nil && len(e.MAC) != 6 {
			return fmt.Errorf("%w: endpoint %s on network %s: MAC %s is not an Ethernet address", ErrInvalid, e.TaskID, e.Network, e.MAC)
		}
	}
	return nil
}

// applySteps are Apply's concerns, in order: forwarding entries first, so that
// the addresses DNS and the VIPs hand out are reachable when they do.
func (n *Netstack) applySteps() []applyStep {
	return []applyStep{
		n.overlayStep(),
		{name: "dns", apply: n.applyDNS},
		{name: "vip", apply: n.applyVIPs},
		{name: "ingress", apply: n.applyIngress},
	}
}

// taskStep is a concern that works inside tasks' namespaces: Setup starts it for
// its task, on the task's networks (IDs, in attachment order); Teardown stops it;
// New starts it again for the tasks of a daemon restarted under them.
type taskStep struct {
	name  string
	start func(ctx context.Context, taskID string, networks []string) error
	stop  func(taskID string)
}

func (n *Netstack) taskSteps() []taskStep {
	return []taskStep{
		{name: "dns", start: n.startDNS, stop: n.stopDNS},
		n.vipStep(),
	}
}
