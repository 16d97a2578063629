// Package dns is the embedded resolver every task asks at 127.0.0.11, as Docker's:
// it answers the names of the services that share a network with the asking task
// from an Index of the cluster's services, and forwards every other name to the
// upstream resolvers. The caller (netstack) opens the sockets in the task's
// namespace and builds an Index from each View it is given; this package only
// answers.
package dns

import (
	"net/netip"
	"slices"
	"strings"
)

// Service is what names a service: its names and, per network, its VIP and
// aliases.
type Service struct {
	ID string
	// Name is the cluster-wide name (`<stack>_<service>`), ShortName the name in
	// the stack file.
	Name, ShortName string
	// DNSRR services resolve to their ready tasks' addresses, never to a VIP.
	DNSRR bool
	// VIPs are the service's virtual IPs by network ID.
	VIPs map[string]netip.Addr
	// Aliases are the service's network aliases by network ID.
	Aliases map[string][]string
}

// Endpoint is one task's address on one network.
type Endpoint struct {
	Network, ServiceID string
	Addr               netip.Addr
	// Ready endpoints alone are in answers.
	Ready bool
}

// TTLs of the answers. A VIP stays the service's for the service's life, but a
// service removed and deployed again gets a new one: a few seconds bound how long
// a client keeps the old. Task addresses change with every task that starts or
// stops, and a stopped task must leave the answers within a second: clients must
// not keep them at all (asking again costs a local round trip).
const (
	vipTTL  = 5
	taskTTL = 0
)

// Index answers names per network. It is immutable once built: a new View builds
// a new Index, swapped in whole, so that lookups take no lock.
type Index struct {
	names map[key]*entry
}

// key is a name (lower case, fully qualified) on one network.
type key struct{ network, name string }

type entry struct {
	addrs []netip.Addr
	ttl   uint32
}

// Build indexes the services' names on every network they are on: a network
// where they have a VIP, aliases or an endpoint (ready or not, so that a name
// stays ours, answered with no address, while its tasks restart).
func Build(services []Service, endpoints []Endpoint) *Index {
	// ready[service][network] are the ready addresses; on[service] the networks
	// with any endpoint of the service.
	ready := map[string]map[string][]netip.Addr{}
	on := map[string][]string{}
	for _, e := range endpoints {
		if e.ServiceID == "" {
			continue
		}
		if !slices.Contains(on[e.ServiceID], e.Network) {
			on[e.ServiceID] = append(on[e.ServiceID], e.Network)
		}
		if !e.Ready {
			continue
		}
		if ready[e.ServiceID] == nil {
			ready[e.ServiceID] = map[string][]netip.Addr{}
		}
		ready[e.ServiceID][e.Network] = append(ready[e.ServiceID][e.Network], e.Addr)
	}
	ix := &Index{names: map[key]*entry{}}
	for _, s := range services {
		for _, nw := range serviceNetworks(s, on[s.ID]) {
			tasks := ready[s.ID][nw]
			names, vipEntry := []string{s.ShortName, s.Name}, entry{addrs: tasks, ttl: taskTTL}
			names = append(names, s.Aliases[nw]...)
			if vip, ok := s.VIPs[nw]; ok && !s.DNSRR && vip.IsValid() {
				vipEntry = entry{addrs: []netip.Addr{vip}, ttl: vipTTL}
			}
			for _, name := range names {
				ix.add(nw, name, vipEntry)
			}
			for _, name := range []string{s.ShortName, s.Name} {
				ix.add(nw, "tasks."+name, entry{addrs: tasks, ttl: taskTTL})
			}
		}
	}
	return ix
}

// serviceNetworks are the networks the service has names on.
func serviceNetworks(s Service, withEndpoints []string) []string {
	nws := slices.Clone(withEndpoints)
	for nw := range s.VIPs {
		nws = append(nws, nw)
	}
	for nw := range s.Aliases {
		nws = append(nws, nw)
	}
	slices.Sort(nws)
	return slices.Compact(nws)
}

// add gives name the entry's addresses on the network, after those it has: two
// services may share a name (an alias) on one network, and both answer.
func (ix *Index) add(network, name string, e entry) {
	if name == "" || name == "tasks." {
		return
	}
	k := key{network, canonical(name)}
	old := ix.names[k]
	if old == nil {
		ix.names[k] = &entry{addrs: slices.Clone(e.addrs), ttl: e.ttl}
		return
	}
	for _, a := range e.addrs {
		if !slices.Contains(old.addrs, a) {
			old.addrs = append(old.addrs, a)
		}
	}
	old.ttl = min(old.ttl, e.ttl)
}

// canonical is the form names are indexed under: lower case, with the trailing dot.
func canonical(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// Lookup returns the addresses a task on the networks gets for name, with their
// TTL, and whether the name is one of the services' on any of those networks
// (true with no address: the name exists, its tasks are not ready).
func (ix *Index) Lookup(name string, networks []string) (addrs []netip.Addr, ttl uint32, found bool) {
	if ix == nil {
		return nil, 0, false
	}
	name = canonical(name)
	ttl = vipTTL
	for _, nw := range networks {
		e := ix.names[key{nw, name}]
		if e == nil {
			continue
		}
		found = true
		ttl = min(ttl, e.ttl)
		for _, a := range e.addrs {
			if !slices.Contains(addrs, a) {
				addrs = append(addrs, a)
			}
		}
	}
	return addrs, ttl, found
}
