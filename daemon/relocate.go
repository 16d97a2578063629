package daemon

import (
	"context"
	"fmt"
	"net"

	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
)

// recoveryAddr is the address a manager forcing a new cluster takes: the one given
// (the request's, else the daemon's --advertise-addr), else its listen address when
// that names one, else the address it had. A backup restored on a replacement machine
// comes up with the lost machine's address in its node file; this is how it takes
// the new machine's.
func recoveryAddr(flag, listen, current string) (string, error) {
	if flag == "" {
		host, _, err := net.SplitHostPort(listen)
		if ip := net.ParseIP(host); err != nil || host == "" || (ip != nil && ip.IsUnspecified()) {
			return current, nil
		}
	}
	return advertiseAddr(flag, listen, "")
}

// relocate moves this manager to addr before its raft is forced into a new cluster,
// which then lists it at addr: a certificate for addr if its own does not name it,
// issued from the CA key the state holds, and the node file. Caller holds the
// lifecycle lock; m is the manager about to be stopped.
func (n *Node) relocate(m *manager, addr string) error {
	meta := n.metaCopy()
	if err := n.reissueFor(m, meta.NodeID, addr); err != nil {
		return err
	}
	if meta.AdvertiseAddr == addr {
		return nil
	}
	n.logger.Warn("the recovered manager moves to a new address", "from", meta.AdvertiseAddr, "to", addr)
	meta.AdvertiseAddr, meta.Managers = addr, []string{addr}
	if err := n.dir.writeNodeFile(meta); err != nil {
		return err
	}
	n.mu.Lock()
	n.meta = meta
	n.mu.Unlock()
	return nil
}

// reissueFor gives this manager a certificate that names addr, unless it has one.
func (n *Node) reissueFor(m *manager, nodeID, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if n.ident.Load().leaf.VerifyHostname(host) == nil {
		return nil
	}
	row, err := m.state().ReadTxn().Cluster(nil)
	if err != nil {
		return fmt.Errorf("read the cluster's CA to issue a certificate for %s: %w", addr, err)
	}
	root, err := ca.ParseRootCA([]byte(row.RootCACert), []byte(row.RootCAKey))
	if err != nil {
		return fmt.Errorf("the cluster's CA, to issue a certificate for %s: %w", addr, err)
	}
	keyPEM, csr, err := ca.NewNodeKeyAndCSR(nodeID)
	if err != nil {
		return err
	}
	certPEM, err := root.IssueNodeCert(csr, nodeID, ca.RoleManager, 0, addr)
	if err != nil {
		return fmt.Errorf("issue this manager a certificate for %s: %w", addr, err)
	}
	id, err := newIdentity(root.CertPEM(), certPEM, keyPEM)
	if err != nil {
		return err
	}
	if err := n.dir.writeCerts(root.CertPEM(), certPEM, keyPEM); err != nil {
		return err
	}
	n.setIdentity(id)
	return nil
}

// recordRelocation brings this manager's node row to where it now runs: its address
// (what the overlay and certificate renewals use), hostname and certificate.
func (n *Node) recordRelocation(ctx context.Context, m *manager, addr string) error {
	meta := n.metaCopy()
	cur, err := m.state().ReadTxn().Node(nil, meta.NodeID)
	if err != nil {
		return fmt.Errorf("this manager's node row: %w", err)
	}
	serial := n.ident.Load().leaf.SerialNumber.Text(16)
	if cur.Addr == addr && cur.ManagerStatus != nil && cur.ManagerStatus.Addr == addr && cur.Hostname == n.cfg.Hostname && cur.CertSerial == serial {
		return nil
	}
	next := cur.Copy()
	next.Addr, next.Hostname, next.CertSerial = addr, n.cfg.Hostname, serial
	if next.ManagerStatus == nil {
		next.ManagerStatus = &model.ManagerStatus{Reachability: model.ReachabilityReachable}
	}
	next.ManagerStatus.Addr = addr
	if _, err := m.st.Apply(ctx, command.CmdNodeUpsert, next); err != nil {
		return fmt.Errorf("record this manager's new address %s: %w", addr, err)
	}
	return nil
}
