package daemon

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/store/sealed"
	"github.com/berthd/berth/spec"
)

// joinWait bounds how long `berth join` waits for a new manager to become a raft
// voter.
const joinWait = 30 * time.Second

// forceNewCluster makes this manager the only manager of its cluster, keeping the state
// it has: Swarm's recovery when the managers lost their quorum. The other managers
// stay in the node list, down, for `node demote` or `node rm --force`; new managers
// join with the join token. Caller holds the lifecycle lock.
func (n *Node) forceNewCluster(ctx context.Context, req *api.InitRequest) (*api.InitResponse, error) {
	if req.Autolock || len(req.DefaultAddrPool) > 0 {
		return nil, api.BadRequest(errors.New("--force-new-cluster keeps the cluster's settings: give it alone (or with --advertise-addr), and change them with 'berth swarm update' afterwards"))
	}
	n.mu.RLock()
	m, phase, meta := n.mgr, n.phase, n.meta
	n.mu.RUnlock()
	if phase != api.PhaseManager || m == nil {
		return nil, api.BadRequest(fmt.Errorf("--force-new-cluster recovers a manager of a cluster that lost its quorum, and this node is %s: run it on a surviving manager (unlock it first if it is locked)", phase))
	}
	addr, err := recoveryAddr(firstOf(req.AdvertiseAddr, n.cfg.AdvertiseAddr), n.cfg.ListenAddr, meta.AdvertiseAddr)
	if err != nil {
		return nil, api.BadRequest(err)
	}
	if err := n.relocate(m, addr); err != nil {
		return nil, err
	}
	n.logger.Warn("forcing a new cluster from this manager's state", "node", meta.NodeID, "addr", addr)
	n.stopManager()
	if err := n.becomeManager(m.kr, raftForceNew); err != nil {
		return nil, err
	}
	mgr, err := n.activeManager()
	if err != nil {
		return nil, err
	}
	if err := waitFor(ctx, 10*time.Second, mgr.st.IsLeader); err != nil {
		return nil, fmt.Errorf("the recovered cluster elected no leader: %w", err)
	}
	if err := n.recordRelocation(ctx, mgr, addr); err != nil {
		return nil, err
	}
	resp := &api.InitResponse{NodeID: meta.NodeID, ClusterID: meta.ClusterID, ManagerAddr: addr}
	for role, to := range map[model.NodeRole]*string{model.RoleWorker: &resp.WorkerToken, model.RoleManager: &resp.ManagerToken} {
		tok, err := n.JoinToken(ctx, role, false)
		if err != nil {
			return nil, err
		}
		*to = tok.Token
	}
	return resp, nil
}

// Init implements server.Backend: a new cluster with this node as its first manager.
func (n *Node) Init(ctx context.Context, req *api.InitRequest) (resp *api.InitResponse, err error) {
	if err := n.lock(ctx); err != nil {
		return nil, err
	}
	defer n.unlock()
	if req.ForceNewCluster {
		return n.forceNewCluster(ctx, req)
	}
	if n.Status().Phase != api.PhaseInactive {
		return nil, api.ErrAlreadyInCluster
	}
	if err := n.dir.leftovers(); err != nil {
		return nil, err
	}
	addr, err := advertiseAddr(firstOf(req.AdvertiseAddr, n.cfg.AdvertiseAddr), n.cfg.ListenAddr, "")
	if err != nil {
		return nil, api.BadRequest(err)
	}
	if err := n.checkPortFree(); err != nil {
		return nil, err
	}
	settings, err := initSettings(req)
	if err != nil {
		return nil, err
	}

	clusterID, nodeID := newID(), newID()
	root, err := ca.NewRootCA(clusterID)
	if err != nil {
		return nil, err
	}
	keyPEM, csr, err := ca.NewNodeKeyAndCSR(nodeID)
	if err != nil {
		return nil, err
	}
	certPEM, err := root.IssueNodeCert(csr, nodeID, ca.RoleManager, time.Duration(settings.NodeCertExpiry), addr)
	if err != nil {
		return nil, err
	}
	id, err := newIdentity(root.CertPEM(), certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	workerToken, err := ca.NewJoinToken(root, ca.RoleWorker)
	if err != nil {
		return nil, err
	}
	managerToken, err := ca.NewJoinToken(root, ca.RoleManager)
	if err != nil {
		return nil, err
	}

	defer func() {
		if err != nil {
			n.abandonMembership()
		}
	}()
	if err := n.dir.writeCerts(root.CertPEM(), certPEM, keyPEM); err != nil {
		return nil, err
	}
	kr, unlockKey, err := sealed.Create(n.dir.raft(), req.Autolock)
	if err != nil {
		return nil, err
	}
	meta := &nodeFile{NodeID: nodeID, ClusterID: clusterID, Role: model.RoleManager, AdvertiseAddr: addr, Managers: []string{addr}}
	if req.Autolock {
		meta.KeyringGeneration = 1
	}
	n.mu.Lock()
	n.meta = meta
	n.mu.Unlock()
	n.setIdentity(id)
	if err := n.becomeManager(kr, raftBootstrap); err != nil {
		return nil, err
	}
	m, err := n.activeManager()
	if err != nil {
		return nil, err
	}
	if err := waitFor(ctx, 10*time.Second, m.st.IsLeader); err != nil {
		return nil, fmt.Errorf("the new cluster elected no leader: %w", err)
	}
	cluster := &model.Cluster{
		ID:         clusterID,
		RootCACert: string(root.CertPEM()),
		RootCAKey:  string(root.KeyPEM()),
		JoinTokens: model.JoinTokens{Worker: workerToken.Encode(), Manager: managerToken.Encode()},
		Autolock:   req.Autolock,
		UnlockKey:  unlockKey,
		Settings:   settings,
	}
	if req.Autolock {
		cluster.UnlockKeyGeneration = 1
	}
	if _, err := m.st.Apply(ctx, command.CmdClusterUpsert, cluster); err != nil {
		return nil, fmt.Errorf("write the cluster: %w", err)
	}
	self := n.selfNode(nodeID, model.RoleManager, addr, id)
	if _, err := m.st.Apply(ctx, command.CmdNodeUpsert, self); err != nil {
		return nil, fmt.Errorf("write this node: %w", err)
	}
	if err := n.dir.writeNodeFile(meta); err != nil {
		return nil, err
	}
	n.logger.Info("cluster initialised", "cluster", clusterID, "node", nodeID, "addr", addr, "autolock", req.Autolock)
	return &api.InitResponse{
		NodeID:       nodeID,
		ClusterID:    clusterID,
		ManagerAddr:  addr,
		WorkerToken:  workerToken.Encode(),
		ManagerToken: managerToken.Encode(),
		UnlockKey:    unlockKey,
	}, nil
}

// Join implements server.Backend: this node joins the cluster of the manager at
// req.RemoteAddr with a join token.
func (n *Node) Join(ctx context.Context, req *api.JoinRequest) (resp *api.JoinResponse, err error) {
	if err := n.lock(ctx); err != nil {
		return nil, err
	}
	defer n.unlock()
	if n.Status().Phase != api.PhaseInactive {
		return nil, api.ErrAlreadyInCluster
	}
	if err := n.dir.leftovers(); err != nil {
		return nil, err
	}
	remote := req.RemoteAddr
	if remote == "" {
		return nil, fmt.Errorf("%w: the address of a manager to join through is required", api.ErrBadRequest)
	}
	if _, _, err := net.SplitHostPort(remote); err != nil {
		remote = net.JoinHostPort(remote, strconv.Itoa(DefaultPort))
	}
	token, err := ca.ParseJoinToken(req.Token)
	if err != nil {
		return nil, err
	}
	// Nothing is sent before the manager has proved it holds the CA the token pins.
	root, err := ca.FetchAndVerifyCA(ctx, remote, token.CADigest)
	if err != nil {
		return nil, err
	}
	clusterID, err := ca.ClusterIDOf(root)
	if err != nil {
		return nil, err
	}
	addr, err := advertiseAddr(firstOf(req.AdvertiseAddr, n.cfg.AdvertiseAddr), n.cfg.ListenAddr, remote)
	if err != nil {
		return nil, api.BadRequest(err)
	}
	// Before the cluster records this node: a manager needs its port, and a worker
	// will when it is promoted.
	if err := n.checkPortFree(); err != nil {
		return nil, err
	}
	keyPEM, csr, err := ca.NewNodeKeyAndCSR(n.cfg.Hostname)
	if err != nil {
		return nil, err
	}
	c, err := api.New(remote, api.WithTLS(ca.ClientTLSConfig(root, tls.Certificate{}, ca.ManagerServerName)))
	if err != nil {
		return nil, err
	}
	platform, resources := localPlatform()
	joined, err := c.RequestJoin(ctx, api.NodeJoinRequest{
		Token: req.Token, CSR: csr, Hostname: n.cfg.Hostname, Addr: addr, Platform: platform, Resources: resources,
		Engine: n.engine(),
	})
	if err != nil {
		return nil, fmt.Errorf("the manager at %s refused the join: %w", remote, err)
	}
	caPEM := []byte(joined.CACertificate)
	if caCert, err := ca.ParseCACert(caPEM); err != nil || !caCert.Equal(root) {
		return nil, fmt.Errorf("the manager at %s answered with another CA than the one the token pins", remote)
	}
	id, err := newTrustedIdentity(caPEM, []byte(joined.TrustedCACertificates), []byte(joined.Certificate), keyPEM)
	if err != nil {
		return nil, fmt.Errorf("the certificate the manager issued: %w", err)
	}
	if id.id.NodeID != joined.NodeID || id.id.ClusterID != clusterID || string(id.id.Role) != string(joined.Role) {
		return nil, fmt.Errorf("the certificate the manager issued does not match its answer")
	}

	defer func() {
		if err != nil {
			n.abandonMembership()
			err = fmt.Errorf("%w (the cluster lists this node as %s: remove it there with `berth node rm --force %s`)", err, joined.NodeID, joined.NodeID)
		}
	}()
	if err := n.dir.saveIdentity(id, keyPEM); err != nil {
		return nil, err
	}
	managers := joined.Managers
	if len(managers) == 0 {
		managers = []string{remote}
	}
	meta := &nodeFile{NodeID: joined.NodeID, ClusterID: clusterID, Role: joined.Role, AdvertiseAddr: addr, Managers: managers,
		KeyringGeneration: joined.UnlockKeyGeneration}
	n.mu.Lock()
	n.meta = meta
	n.mu.Unlock()
	n.setIdentity(id)
	switch joined.Role {
	case model.RoleManager:
		if err := n.joinAsManager(ctx, joined.NodeID, joined.UnlockKey); err != nil {
			return nil, err
		}
	default:
		n.becomeWorker()
	}
	if err := n.dir.writeNodeFile(meta); err != nil {
		return nil, err
	}
	n.logger.Info("joined the cluster", "cluster", clusterID, "node", joined.NodeID, "role", joined.Role, "addr", addr)
	return &api.JoinResponse{NodeID: joined.NodeID, ClusterID: clusterID, Role: joined.Role}, nil
}

// Leave implements server.Backend. A manager leaves only with Force (as in Docker): it
// is taken out of raft first when the others can still agree on it.
func (n *Node) Leave(ctx context.Context, req *api.LeaveRequest) error {
	if err := n.lock(ctx); err != nil {
		return err
	}
	defer n.unlock()
	n.mu.RLock()
	phase, m, meta := n.phase, n.mgr, n.meta
	n.mu.RUnlock()
	switch phase {
	case api.PhaseInactive:
		return api.ErrNotInCluster
	case api.PhaseLocked:
		if !req.Force {
			return api.Refused(errors.New("this node is a locked manager: unlock it and demote it first, or use --force (the cluster will list it as an unreachable manager until it is removed there)"))
		}
	case api.PhaseManager:
		if m == nil {
			return ErrStopping
		}
		if !req.Force {
			return m.leaveRefusal(meta.NodeID)
		}
	}
	n.stopMembership()
	if phase == api.PhaseManager {
		m.leaveRaft(ctx, meta.NodeID)
		n.stopManager()
	}
	n.abandonMembership()
	n.logger.Info("left the cluster", "cluster", meta.ClusterID, "node", meta.NodeID)
	return nil
}

// leaveRefusal says why a manager does not leave without --force, the way Docker
// does.
func (m *manager) leaveRefusal(self string) error {
	voters, reachable := m.ctl.Voters()
	up := 0
	for _, v := range voters {
		if v != self && reachable(v) {
			up++
		}
	}
	remaining := len(voters) - 1
	msg := "this node is a manager"
	switch {
	case remaining <= 0:
		msg += ": it is the last one, and leaving erases the cluster's state"
	case up < remaining/2+1:
		msg += fmt.Sprintf(": leaving would leave %d of %d managers reachable, and raft needs %d: the cluster would stop accepting changes", up, remaining, remaining/2+1)
	default:
		msg += fmt.Sprintf(": leaving leaves %d managers, %d of them reachable (raft keeps its majority)", remaining, up)
	}
	return api.Refused(fmt.Errorf("%s. Demote it first (`berth node demote %s` on another manager), or use --force", msg, self))
}

// leaveRaft takes a leaving manager out of the cluster's records, best effort: its
// role becomes worker (so it no longer counts as a manager) and it is removed from
// raft, so that the others keep a majority.
func (m *manager) leaveRaft(ctx context.Context, self string) {
	voters, _ := m.ctl.Voters()
	if len(voters) <= 1 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := m.st.Apply(ctx, command.CmdNodeUpdate, command.NodeUpdate{ID: self, Role: model.RoleWorker}); err != nil {
		m.logger.Warn("leaving: could not record this node as a worker", "error", err)
	}
	if err := m.ctl.RemoveFromRaft(ctx, self); err != nil {
		m.logger.Warn("leaving: could not remove this manager from raft; remove it on another manager with `berth node rm --force`", "error", err)
	}
}

// abandonMembership forgets the cluster: what was written to the data dir is
// removed and the node is inactive again. Caller holds the lifecycle lock and has
// stopped what ran.
func (n *Node) abandonMembership() {
	n.stopMembership()
	n.stopManager()
	n.closeWorkerPort()
	if n.cfg.AgentCleanup != nil {
		ctx, cancel := context.WithTimeout(n.runCtx, 2*time.Minute)
		if err := n.cfg.AgentCleanup(ctx); err != nil {
			n.logger.Error("could not remove everything the agent made", "error", err)
		}
		cancel()
	}
	if err := n.dir.wipe(); err != nil {
		n.logger.Error("could not remove the node's cluster state", "error", err)
	}
	n.mu.Lock()
	n.phase, n.meta, n.kr = api.PhaseInactive, nil, nil
	n.mu.Unlock()
	n.setIdentity(nil)
}

// Unlock implements server.Backend.
func (n *Node) Unlock(ctx context.Context, req *api.UnlockRequest) error {
	if err := n.lock(ctx); err != nil {
		return err
	}
	defer n.unlock()
	n.mu.RLock()
	phase, kr := n.phase, n.kr
	n.mu.RUnlock()
	if phase != api.PhaseLocked || kr == nil {
		return sealed.ErrNotLocked
	}
	// A keyring already unlocked by an earlier attempt whose start failed is not
	// asked again.
	if kr.Locked() {
		if err := kr.Unlock(req.Key); err != nil {
			return err
		}
	}
	if err := n.becomeManager(kr, raftResume); err != nil {
		return fmt.Errorf("unlocked, but the manager did not start: %w", err)
	}
	// Answer once this manager has caught up enough to serve the cluster's state
	// (raft replays the log after the leader's first contact), or after a bound.
	if m, err := n.activeManager(); err == nil {
		_ = waitFor(ctx, 10*time.Second, func() bool {
			_, err := m.state().ReadTxn().Cluster(nil)
			return err == nil
		})
	}
	n.logger.Info("manager unlocked")
	return nil
}

// joinAsManager starts raft on a node the cluster just took in as a manager, and
// returns once it is a voter with the cluster's state, as Docker's join does.
func (n *Node) joinAsManager(ctx context.Context, nodeID, unlockKey string) error {
	kr, err := n.newKeyring(unlockKey)
	if err != nil {
		return err
	}
	if err := n.becomeManager(kr, raftResume); err != nil {
		return err
	}
	m, err := n.activeManager()
	if err != nil {
		return err
	}
	err = waitFor(ctx, joinWait, func() bool {
		if !m.ctl.IsVoter(nodeID) {
			return false
		}
		_, cerr := m.state().ReadTxn().Cluster(nil)
		return cerr == nil
	})
	if err != nil {
		return fmt.Errorf("joined, but this manager did not become a raft voter within %s: %w", joinWait, err)
	}
	return nil
}

// newKeyring makes a new manager's keyring, wrapped with the cluster's unlock key
// when it is autolocked (unlockKey is then set), else with a key stored beside it.
func (n *Node) newKeyring(unlockKey string) (*sealed.Keyring, error) {
	if unlockKey != "" {
		return sealed.CreateWithUnlockKey(n.dir.raft(), unlockKey)
	}
	kr, _, err := sealed.Create(n.dir.raft(), false)
	return kr, err
}

// initSettings are the new cluster's settings: the defaults, with what init was given.
func initSettings(req *api.InitRequest) (model.Settings, error) {
	settings := model.DefaultSettings()
	if req.CertExpiry < 0 {
		return settings, api.BadRequest(errors.New("--cert-expiry must be a positive duration, such as 2160h"))
	}
	if err := ca.CheckNodeCertValidity(time.Duration(req.CertExpiry)); err != nil {
		return settings, api.BadRequest(err)
	}
	settings.NodeCertExpiry = req.CertExpiry
	for _, p := range req.DefaultAddrPool {
		if _, err := netip.ParsePrefix(p); err != nil {
			return settings, fmt.Errorf("%w: default address pool %q is not a CIDR (e.g. 10.20.0.0/16)", api.ErrBadRequest, p)
		}
	}
	if len(req.DefaultAddrPool) > 0 {
		settings.DefaultAddrPool = req.DefaultAddrPool
	}
	return settings, nil
}

func (n *Node) selfNode(id string, role model.NodeRole, addr string, ident *identity) *model.Node {
	platform, resources := localPlatform()
	nd := &model.Node{
		ID: id, Hostname: n.cfg.Hostname, Role: role, Availability: model.AvailabilityActive,
		Platform: platform, Resources: resources, Addr: addr,
		Status:     model.NodeStatus{State: model.NodeReady, Timestamp: time.Now().UTC()},
		CertSerial: ident.leaf.SerialNumber.Text(16), CertRoot: ca.Digest(ident.root),
		Engine: n.engine(),
	}
	if role == model.RoleManager {
		nd.ManagerStatus = &model.ManagerStatus{Reachability: model.ReachabilityReachable, Addr: addr}
	}
	return nd
}

// localPlatform describes this machine for its node record.
func localPlatform() (model.Platform, model.NodeResources) {
	res := model.NodeResources{NanoCPUs: spec.NanoCPUs(int64(runtime.NumCPU()) * 1e9)}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) >= 2 && fields[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
					res.MemoryBytes = kb * 1024
				}
				break
			}
		}
	}
	return model.Platform{OS: runtime.GOOS, Arch: runtime.GOARCH}, res
}

// checkPortFree makes sure the node port can be opened, so that init and join fail
// before they change anything rather than half way.
func (n *Node) checkPortFree() error {
	ln, err := net.Listen("tcp", n.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("the node port %s cannot be opened (--listen-addr): %w", n.cfg.ListenAddr, err)
	}
	return ln.Close()
}

func firstOf(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// waitFor polls cond until it holds, ctx is done or d has passed.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for !cond() {
		if !sleep(ctx, 50*time.Millisecond) {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("gave up after %s", d)
			}
			return ctx.Err()
		}
	}
	return nil
}
