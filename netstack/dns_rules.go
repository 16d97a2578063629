package netstack

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"
)

// dnsTable is the table, in a task's namespace, that leads 127.0.0.11:53 to the
// ports the task's resolver listens on. The resolver does not take port 53
// itself, which a task may want for a DNS server of its own (on 0.0.0.0), as
// Docker's does not.
var dnsTable = &nftables.Table{Name: "berth-dns", Family: nftables.TableFamilyINet}

var dnsOutputChain = &nftables.Chain{
	Name: "output", Table: dnsTable, Type: nftables.ChainTypeNAT,
	Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest, Policy: &acceptPolicy,
}

// redirectDNS leads the task's queries to 127.0.0.11:53 to the resolver's ports,
// replacing the rules of the resolver before it (a restarted daemon's listens on
// other ports) in one commit: no query finds no rule meanwhile. Replies come back
// from port 53 by conntrack.
func redirectDNS(ns netns.NsHandle, udpPort, tcpPort uint16) error {
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return fmt.Errorf("nftables in the task's namespace: %w", err)
	}
	c.AddTable(dnsTable)
	c.FlushTable(dnsTable)
	c.AddChain(dnsOutputChain)
	for _, p := range []PortMapping{
		{Protocol: "udp", Published: dnsListenAddr.Port(), Target: udpPort},
		{Protocol: "tcp", Published: dnsListenAddr.Port(), Target: tcpPort},
	} {
		p.HostIP = dnsListenAddr.Addr()
		c.AddRule(&nftables.Rule{Table: dnsTable, Chain: dnsOutputChain, Exprs: dnatExprs(dnat{port: p, to: dnsListenAddr.Addr()}, true)})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("redirect %s to the resolver: %w", dnsListenAddr, err)
	}
	return nil
}
