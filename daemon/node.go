package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berthd/berth/applier"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/api/server"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/store/sealed"
)

// Defaults of the daemon's flags, as in the issue and Docker.
const (
	DefaultDataDir    = "/var/lib/berth"
	DefaultListenAddr = "0.0.0.0:4270"
)

// Config is what a node needs to run. Zero durations get the defaults.
type Config struct {
	DataDir       string
	Socket        string
	ListenAddr    string
	AdvertiseAddr string
	Hostname      string
	Logger        *slog.Logger
	// Version is the build's version, which Info reports (`berth version`).
	Version string

	// HeartbeatPeriod overrides the cluster's heartbeat period on this node: how
	// often it heartbeats and, while it leads, how fast it declares nodes down.
	// Tests shorten it; clusters use Settings.HeartbeatPeriod.
	HeartbeatPeriod time.Duration
	// ApplyTimeout bounds one write, forwarding and elections included (10s).
	ApplyTimeout time.Duration
	// RaftHeartbeatTimeout and RaftElectionTimeout tune raft (its defaults: 1s).
	RaftHeartbeatTimeout time.Duration
	RaftElectionTimeout  time.Duration
	// RaftSnapshotThreshold and RaftSnapshotInterval make raft snapshot sooner
	// (tests); zero keeps raft's defaults (8192 entries, checked every 2 minutes).
	RaftSnapshotThreshold uint64
	RaftSnapshotInterval  time.Duration

	// Agent, when set, runs while the node is part of a cluster, with the node's
	// agent API: the agent on containerd (runtime/agent), or the simulated agent of
	// process tests (`berth daemon --sim-agent`).
	Agent func(ctx context.Context, api AgentAPI) error
	// AgentCleanup, when set, runs when the node leaves the cluster, after the
	// agent stopped: it removes the containers, sandboxes and files the agent
	// made (a daemon restart keeps them, to adopt them).
	AgentCleanup func(ctx context.Context) error
	// LoadImage imports an image archive into the node's container runtime
	// (`berth image load`); nil when the node runs none.
	LoadImage func(ctx context.Context, r io.Reader) ([]string, error)
	// TaskLogs streams the logs of a task that ran on this node, by task ID; an
	// error wrapping state.ErrNotFound says the node has none of it.
	TaskLogs func(ctx context.Context, taskID string, o api.LogOptions, w io.Writer) error

	// MetricsAddr, when set, is a plain-HTTP address serving GET /metrics (Prometheus
	// text), which the operator opts into. Metrics are the daemon's own (Go runtime,
	// process), the manager's (metrics.go) and Collectors'.
	MetricsAddr string
	Collectors  []prometheus.Collector
}

// Node is one running berth node: it serves the API on its unix socket and, once it is
// a manager, on its TCP port, and it moves between the phases of api.Phase as the
// operator inits, joins, unlocks and leaves. It implements server.Backend.
type Node struct {
	cfg    Config
	dir    dataDir
	logger *slog.Logger

	// life serialises the lifecycle (init, join, leave, unlock, role changes). It is a
	// channel rather than a mutex so that waiting for it can be cancelled.
	life chan struct{}
	// certKick asks certLoop to renew the certificate now (a heartbeat said the
	// root CA changed); the reason is logged.
	certKick chan string

	mu     sync.RWMutex
	phase  api.Phase
	meta   *nodeFile
	kr     *sealed.Keyring // the locked keyring, in PhaseLocked
	mgr    *manager
	member *loops // background work of the membership (heartbeats)
	wport  *port  // a worker's node port (workerport.go); a manager's is the manager's

	ident atomic.Pointer[identity]
	hc    atomic.Pointer[http.Client]

	// runCtx is the daemon's lifetime: background work started by a request must
	// outlive the request.
	runCtx context.Context

	// halted receives why this node's manager stopped applying the raft log
	// (store.Config.OnHalt): the daemon exits with it.
	halted chan error

	metrics *prometheus.Registry
	// gitops counts the syncs, pushes and webhooks of every manager this node becomes.
	gitops  *applier.Metrics
	timings controlTimings
}

var _ server.Backend = (*Node)(nil)

// New checks cfg and returns a node; Run runs it.
func New(cfg Config) (*Node, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.Socket == "" {
		cfg.Socket = api.DefaultSocket
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = DefaultListenAddr
	}
	if _, _, err := net.SplitHostPort(cfg.ListenAddr); err != nil {
		return nil, fmt.Errorf("invalid listen address %q: %w", cfg.ListenAddr, err)
	}
	if cfg.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("hostname: %w (use --hostname)", err)
		}
		cfg.Hostname = h
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ApplyTimeout == 0 {
		cfg.ApplyTimeout = 10 * time.Second
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if cfg.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(cfg.MetricsAddr); err != nil {
			return nil, fmt.Errorf("invalid metrics address %q: %w", cfg.MetricsAddr, err)
		}
	}
	n := &Node{cfg: cfg, dir: dataDir(abs), logger: cfg.Logger, life: make(chan struct{}, 1), certKick: make(chan string, 1),
		phase: api.PhaseInactive, halted: make(chan error, 1)}
	n.gitops, n.timings = applier.NewMetrics(), newControlTimings()
	n.metrics = newRegistry(n, append(n.gitops.Collectors(), cfg.Collectors...))
	return n, nil
}

// Run serves until ctx is done, then stops cleanly: the API first, then raft.
func (n *Node) Run(ctx context.Context) error {
	lockFile, err := n.dir.lock()
	if err != nil {
		return err
	}
	defer lockFile.Close()
	n.runCtx = ctx
	if err := n.start(); err != nil {
		return err
	}
	defer n.stop()

	ln, err := listenSocket(n.cfg.Socket)
	if err != nil {
		return err
	}
	defer os.Remove(n.cfg.Socket)
	srv := &http.Server{
		Handler:           server.NewLocalHandler(n, server.WithLogger(n.logger.With("api", "local"))),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(n.logger.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var metricsFailed <-chan error // nil: never ready
	if n.cfg.MetricsAddr != "" {
		stop, failed, err := n.serveMetrics(n.cfg.MetricsAddr)
		if err != nil {
			_ = srv.Close()
			return err
		}
		defer stop()
		metricsFailed = failed
	}
	st := n.Status()
	n.logger.Info("berth daemon ready", "socket", n.cfg.Socket, "data_dir", string(n.dir), "phase", st.Phase,
		"node", st.NodeID, "cluster", st.ClusterID)

	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("serve %s: %w", n.cfg.Socket, err)
	case err := <-metricsFailed:
		_ = srv.Close()
		return err
	case err := <-n.halted:
		// Serving on would answer from a state that no longer follows the cluster's.
		_ = srv.Close()
		return fmt.Errorf("this manager stopped: %w", err)
	}
	n.logger.Info("berth daemon stopping")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		_ = srv.Close()
	}
	return nil
}

// listenSocket creates the unix socket mode 0600: only root talks to the daemon.
func listenSocket(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create socket directory: %w", err)
		}
	}
	if _, err := os.Lstat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("another berth daemon is serving %s", path)
		}
		// Left by a daemon that died: nobody answers on it.
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	// The umask makes the socket 0600 from its creation: a chmod afterwards would
	// leave a moment in which anyone could connect. The daemon has no other
	// goroutine creating files yet.
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// start resumes what the data dir says the node is.
func (n *Node) start() error {
	nf, err := n.dir.readNodeFile()
	if err != nil {
		return err
	}
	if nf == nil {
		n.logger.Info("this node is not part of a cluster: waiting for `berth init` or `berth join`")
		return nil
	}
	id, err := n.dir.readIdentity()
	if err != nil {
		return err
	}
	if id.id.NodeID != nf.NodeID || id.id.ClusterID != nf.ClusterID {
		return fmt.Errorf("the node certificate is for node %s of cluster %s, %s says node %s of cluster %s",
			id.id.NodeID, id.id.ClusterID, n.dir.path(nodeFileName), nf.NodeID, nf.ClusterID)
	}
	n.setIdentity(id)
	n.mu.Lock()
	n.meta = nf
	n.mu.Unlock()
	switch nf.Role {
	case model.RoleManager:
		kr, err := sealed.Open(n.dir.raft())
		if err != nil {
			return fmt.Errorf("open the manager's keyring: %w", err)
		}
		if kr.Locked() {
			n.mu.Lock()
			n.phase, n.kr = api.PhaseLocked, kr
			n.mu.Unlock()
			n.logger.Warn("this manager is locked (autolock is on): run `berth unlock` to start it")
			return nil
		}
		return n.becomeManager(kr, raftResume)
	default:
		n.becomeWorker()
		return nil
	}
}

// stop stops everything the node runs, for the daemon's exit.
func (n *Node) stop() {
	n.life <- struct{}{}
	defer func() { <-n.life }()
	n.stopMembership()
	n.closeWorkerPort()
	n.mu.Lock()
	m := n.mgr
	n.mgr = nil
	n.mu.Unlock()
	if m != nil {
		m.stop()
	}
}

// lock takes the lifecycle lock, or gives up with ctx.
func (n *Node) lock(ctx context.Context) error {
	select {
	case n.life <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Node) unlock() { <-n.life }

// Status implements server.Backend.
func (n *Node) Status() api.Status {
	n.mu.RLock()
	defer n.mu.RUnlock()
	s := api.Status{Phase: n.phase}
	if n.meta != nil {
		s.ClusterID, s.NodeID = n.meta.ClusterID, n.meta.NodeID
	}
	return s
}

// activeManager returns the running manager, or the error that says why there is none.
func (n *Node) activeManager() (*manager, error) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	switch n.phase {
	case api.PhaseManager:
		if n.mgr != nil {
			return n.mgr, nil
		}
		return nil, ErrStopping
	case api.PhaseLocked:
		return nil, sealed.ErrLocked
	case api.PhaseWorker:
		return nil, api.ErrNotManager
	default:
		return nil, api.ErrNotInCluster
	}
}

// readyManager is activeManager for the operator's calls: a manager that is still
// catching up after a start answers api.ErrCatchingUp rather than stale emptiness.
func (n *Node) readyManager() (*manager, error) {
	m, err := n.activeManager()
	if err != nil {
		return nil, err
	}
	select {
	case <-m.caughtUp:
		return m, nil
	default:
		return nil, fmt.Errorf("%w (applied raft index %d)", api.ErrCatchingUp, m.st.AppliedIndex())
	}
}

// ErrStopping is returned while the node's manager is being stopped or started.
var ErrStopping = errors.New("this node is changing role or stopping: try again in a moment")

func (n *Node) metaCopy() *nodeFile {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.meta == nil {
		return nil
	}
	c := *n.meta
	c.Managers = append([]string(nil), n.meta.Managers...)
	return &c
}

// setIdentity installs the node's certificates and a new HTTP client to other nodes:
// connections kept alive by the old client still carry the old certificate, and a
// manager endpoint would see the worker a promoted node was.
func (n *Node) setIdentity(id *identity) {
	n.ident.Store(id)
	var hc *http.Client
	if id != nil {
		hc = api.NewTLSHTTPClient(n.clientTLS(id))
	}
	if old := n.hc.Swap(hc); old != nil {
		old.CloseIdleConnections()
	}
}

// clientTLS is the configuration for dialling managers: trust the cluster CA only,
// accept only manager certificates, present the node's current certificate.
func (n *Node) clientTLS(id *identity) *tls.Config {
	cfg := ca.ClientTLSConfig(id.root, tls.Certificate{}, ca.ManagerServerName, ca.WithAdditionalRoots(id.trusted...))
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		cur := n.ident.Load()
		if cur == nil {
			return &tls.Certificate{}, nil
		}
		c := cur.cert
		return &c, nil
	}
	return cfg
}

// trust is what the node trusts and presents now, for diallers built once.
func (n *Node) trust() ca.Trust {
	cur := n.ident.Load()
	if cur == nil {
		return ca.Trust{}
	}
	return ca.Trust{Roots: append([]*x509.Certificate{cur.root}, cur.trusted...), Cert: cur.cert}
}

// client returns an API client for the manager at addr over mutual TLS.
func (n *Node) client(addr string) (*api.Client, error) {
	hc := n.hc.Load()
	if hc == nil {
		return nil, api.ErrNotInCluster
	}
	return api.New(addr, api.WithHTTPClient(hc))
}

// Member implements server.Backend: a certificate of a removed node is refused.
func (n *Node) Member(nodeID string) error {
	m, err := n.activeManager()
	if errors.Is(err, api.ErrNotManager) {
		// A worker keeps no cluster state to look the node up in: a certificate
		// of the cluster's CA with the role the endpoint asks for, which the
		// handshake and the handler verified, is what it has. (So a removed
		// manager's certificate works on workers until it expires.)
		return nil
	}
	if err != nil {
		return err
	}
	return m.ctl.Member(nodeID)
}

// Info implements server.Backend.
func (n *Node) Info(ctx context.Context) (*api.Info, error) {
	n.mu.RLock()
	phase, meta, m := n.phase, n.meta, n.mgr
	n.mu.RUnlock()
	info := &api.Info{Phase: phase, Hostname: n.cfg.Hostname,
		Version: &api.Version{Version: n.cfg.Version, GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, Protocol: command.Version}}
	if meta == nil {
		return info, nil
	}
	info.NodeID, info.ClusterID, info.Role, info.NodeAddr = meta.NodeID, meta.ClusterID, meta.Role, meta.AdvertiseAddr
	switch phase {
	case api.PhaseLocked:
		info.Locked, info.Autolock = true, true
	case api.PhaseWorker:
		info.ManagerAddrs = meta.Managers
	case api.PhaseManager:
		if m != nil {
			m.ctl.FillInfo(info)
		}
	}
	return info, nil
}

// halt is store.Config.OnHalt: the daemon exits with err.
func (n *Node) halt(err error) {
	select {
	case n.halted <- err:
	default: // one reason is enough
	}
}

// loops is a set of background goroutines that stop together.
type loops struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newLoops(parent context.Context) (*loops, context.Context) {
	ctx, cancel := context.WithCancel(parent)
	return &loops{cancel: cancel}, ctx
}

func (l *loops) run(fn func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		fn()
	}()
}

func (l *loops) stop() {
	l.cancel()
	l.wg.Wait()
}

// sleep waits d or until ctx is done; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
