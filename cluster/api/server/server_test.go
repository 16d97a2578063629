package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/api/server"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store"
	"github.com/berthd/berth/cluster/store/sealed"
	"github.com/berthd/berth/spec"
)

// backend is an in-process server.Backend over a real state.Store (written directly at
// increasing indexes, as the FSM would). Methods a test does not set panic through
// the nil embedded interface, which the handler turns into a 500.
type backend struct {
	server.Backend
	mu       sync.Mutex
	status   api.Status
	st       *state.Store
	index    uint64
	err      error // returned by the methods below when set
	members  map[string]bool
	reported []string // nodes that reported task statuses
	// nodeTasks is how many tasks NodeTasks answers with (0: one).
	nodeTasks int
	// loaded counts the bytes of image archives LoadImage read.
	loaded countingBody
	// viewQueries are the queries NodeNetworkView was asked.
	viewQueries []api.Query
	// logOptions are the options TaskLogs was last asked.
	logOptions api.LogOptions
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	return &backend{status: api.Status{Phase: api.PhaseManager, ClusterID: "c1", NodeID: "n1"}, st: st, members: map[string]bool{}}
}

func (b *backend) Status() api.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status
}

func (b *backend) setPhase(p api.Phase) {
	b.mu.Lock()
	b.status.Phase = p
	b.mu.Unlock()
}

func (b *backend) Member(id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.members[id] {
		return fmt.Errorf("%w: node %s is not a member of this cluster", ca.ErrForbidden, id)
	}
	return nil
}

func (b *backend) write(t *testing.T, fn func(*state.WriteTxn) error) uint64 {
	t.Helper()
	b.mu.Lock()
	b.index++
	idx := b.index
	b.mu.Unlock()
	if err := b.st.Update(idx, fn); err != nil {
		t.Fatal(err)
	}
	return idx
}

func (b *backend) Info(context.Context) (*api.Info, error) {
	s := b.Status()
	return &api.Info{Phase: s.Phase, NodeID: s.NodeID, ClusterID: s.ClusterID}, nil
}

func (b *backend) Unlock(_ context.Context, req *api.UnlockRequest) error {
	if err := sealed.ValidateUnlockKey(req.Key); err != nil {
		return err
	}
	return sealed.ErrWrongKey
}

func (b *backend) Nodes(ctx context.Context, q api.Query) ([]*model.Node, api.QueryMeta, error) {
	if b.err != nil {
		return nil, api.QueryMeta{}, b.err
	}
	if q.Wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, q.Wait)
		defer cancel()
	}
	var nodes []*model.Node
	idx, err := b.st.Blocking(ctx, q.Index, []string{state.TableNodes}, func(tx *state.ReadTxn, ws memdb.WatchSet) (uint64, error) {
		var err error
		nodes, err = tx.Nodes(ws)
		return tx.Index(state.TableNodes), err
	})
	return nodes, api.QueryMeta{Index: idx}, err
}

func (b *backend) Secrets(context.Context, api.Query) ([]*model.Secret, api.QueryMeta, error) {
	// A careless backend: the handler must still not send the data.
	return []*model.Secret{{ID: "s1", Name: "pw", Version: 1, Data: []byte("hunter2")}}, api.QueryMeta{Index: 7}, nil
}

func (b *backend) Secret(context.Context, string) (*model.Secret, error) {
	// As careless as Secrets.
	return &model.Secret{ID: "s1", Name: "pw", Version: 1, Data: []byte("hunter2")}, nil
}

func (b *backend) Configs(context.Context, api.Query) ([]*model.Config, api.QueryMeta, error) {
	return []*model.Config{{ID: "c1", Name: "conf", Version: 1, Data: []byte("listen 80")}}, api.QueryMeta{Index: 8}, nil
}

func (b *backend) Heartbeat(_ context.Context, caller ca.Identity, _ api.HeartbeatRequest) (*api.HeartbeatResponse, error) {
	return &api.HeartbeatResponse{Role: model.NodeRole(caller.Role)}, nil
}

func (b *backend) RequestJoin(_ context.Context, req *api.NodeJoinRequest) (*api.NodeJoinResponse, error) {
	if req.Token != "good" {
		return nil, fmt.Errorf("%w: it matches neither token", ca.ErrInvalidToken)
	}
	return &api.NodeJoinResponse{NodeID: "n9", Role: model.RoleWorker}, nil
}

func (b *backend) ApplyCommand(_ context.Context, cmd []byte) (uint64, error) {
	if len(cmd) == 0 || cmd[0] != byte(command.CmdNodeUpdate) {
		return 0, fmt.Errorf("%w 250", command.ErrUnknown)
	}
	return 42, nil
}

// serveLocal serves the local handler on a unix socket in a temp dir.
func serveLocal(t *testing.T, b server.Backend) *api.Client {
	t.Helper()
	dir, err := os.MkdirTemp("", "api-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: server.NewLocalHandler(b)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c, err := api.New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestErrorsKeepTheirMeaningAcrossTheWire(t *testing.T) {
	b := newBackend(t)
	c := serveLocal(t, b)
	ctx := context.Background()
	for _, tc := range []struct {
		err      error
		sentinel error
		status   int
		code     string
	}{
		{fmt.Errorf("no such node: x: %w", state.ErrNotFound), api.ErrNotFound, 404, "not_found"},
		{fmt.Errorf("hostname taken: %w", state.ErrConflict), api.ErrConflict, 409, "conflict"},
		{store.ErrNoLeader, api.ErrNoLeader, 503, "no_leader"},
		{&store.NotLeaderError{Leader: "10.0.0.1:4270"}, api.ErrNotLeader, 421, "not_leader"},
		{sealed.ErrLocked, api.ErrLocked, 423, "locked"},
		{sealed.ErrWrongKey, api.ErrWrongKey, 403, "wrong_key"},
		{fmt.Errorf("%w: demoting m3 would leave 1 of 2", api.ErrQuorum), api.ErrQuorum, 409, "quorum"},
		{api.ErrNotInCluster, api.ErrNotInCluster, 503, "not_in_cluster"},
		{ca.ErrForbidden, api.ErrForbidden, 403, "forbidden"},
		{api.BadRequest(errors.New("source x: --url is required for a Git source")), api.ErrBadRequest, 400, "bad_request"},
		{api.Refused(errors.New("service web_api has no previous spec to roll back to (it was never updated)")), api.ErrRefused, 409, "refused"},
		{errors.New("disk on fire"), nil, 500, "internal"},
	} {
		b.err = tc.err
		_, _, err := c.Nodes(ctx, api.Query{})
		var apiErr *api.Error
		if !errors.As(err, &apiErr) {
			t.Fatalf("%v: got %T %v, want *api.Error", tc.err, err, err)
		}
		if apiErr.StatusCode != tc.status || apiErr.Code != tc.code || apiErr.Message != tc.err.Error() {
			t.Errorf("%v: got %d %s %q", tc.err, apiErr.StatusCode, apiErr.Code, apiErr.Message)
		}
		if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
			t.Errorf("%v: errors.Is does not match the sentinel on the client side", tc.err)
		}
	}
	b.err = &store.NotLeaderError{Leader: "10.0.0.1:4270"}
	_, _, err := c.Nodes(ctx, api.Query{})
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Leader != "10.0.0.1:4270" || !errors.Is(err, api.ErrNotLeader) {
		t.Errorf("not leader: %#v", err)
	}
}

func TestPhaseGate(t *testing.T) {
	b := newBackend(t)
	c := serveLocal(t, b)
	ctx := context.Background()
	b.setPhase(api.PhaseLocked)
	if _, _, err := c.Nodes(ctx, api.Query{}); !errors.Is(err, api.ErrLocked) || err.Error() != "this node is locked: run `berth unlock`" {
		t.Errorf("locked node ls: %v", err)
	}
	if info, err := c.Info(ctx); err != nil || info.Phase != api.PhaseLocked {
		t.Errorf("locked info: %+v %v", info, err)
	}
	if err := c.Unlock(ctx, "BERTHKEY-1-"+strings.Repeat("A", 43)); !errors.Is(err, api.ErrWrongKey) {
		t.Errorf("locked unlock reaches the backend: %v", err)
	}
	b.setPhase(api.PhaseInactive)
	if _, _, err := c.Nodes(ctx, api.Query{}); !errors.Is(err, api.ErrNotInCluster) {
		t.Errorf("inactive node ls: %v", err)
	}
	b.setPhase(api.PhaseWorker)
	if _, _, err := c.Nodes(ctx, api.Query{}); !errors.Is(err, api.ErrNotManager) {
		t.Errorf("worker node ls: %v", err)
	}
}

func TestBlockingQuery(t *testing.T) {
	b := newBackend(t)
	c := serveLocal(t, b)
	ctx := context.Background()
	node := func(id string) *model.Node {
		return &model.Node{ID: id, Hostname: "h-" + id, Role: model.RoleWorker, Availability: model.AvailabilityActive,
			Status: model.NodeStatus{State: model.NodeReady}}
	}
	b.write(t, func(w *state.WriteTxn) error { return w.UpsertNode(node("a")) })
	nodes, meta, err := c.Nodes(ctx, api.Query{})
	if err != nil || len(nodes) != 1 || meta.Index != 1 {
		t.Fatalf("nodes: %d, meta %+v, %v", len(nodes), meta, err)
	}
	// A wait that sees no change answers with the same index when it runs out.
	_, meta2, err := c.Nodes(ctx, api.Query{Index: meta.Index, Wait: 50 * time.Millisecond})
	if err != nil || meta2.Index != meta.Index {
		t.Fatalf("timed-out wait: %+v %v", meta2, err)
	}
	// A change wakes the wait up.
	type answer struct {
		nodes []*model.Node
		meta  api.QueryMeta
		err   error
	}
	ch := make(chan answer, 1)
	go func() {
		n, m, err := c.Nodes(ctx, api.Query{Index: meta.Index, Wait: 30 * time.Second})
		ch <- answer{n, m, err}
	}()
	// Writes to other tables do not count.
	b.write(t, func(w *state.WriteTxn) error {
		return w.UpsertConfig(&model.Config{ID: "c", Name: "c", Version: 1})
	})
	idx := b.write(t, func(w *state.WriteTxn) error { return w.UpsertNode(node("b")) })
	select {
	case a := <-ch:
		if a.err != nil || len(a.nodes) != 2 || a.meta.Index != idx {
			t.Fatalf("woken wait: %d nodes, %+v, %v", len(a.nodes), a.meta, a.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("blocking query not woken by a write within 20s")
	}
}

func TestListingsNeverCarryData(t *testing.T) {
	c := serveLocal(t, newBackend(t))
	ctx := context.Background()
	secrets, meta, err := c.Secrets(ctx, api.Query{})
	if err != nil || len(secrets) != 1 || secrets[0].Data != nil || meta.Index != 7 {
		t.Errorf("secrets: %v %+v %v", secrets, meta, err)
	}
	configs, _, err := c.Configs(ctx, api.Query{})
	if err != nil || len(configs) != 1 || configs[0].Data != nil {
		t.Errorf("configs: %v %v", configs, err)
	}
}

func (b *backend) TaskLogs(_ context.Context, _ string, o api.LogOptions, w io.Writer) error {
	b.mu.Lock()
	b.logOptions = o
	b.mu.Unlock()
	_, err := io.WriteString(w, "a line\n")
	return err
}

func TestTaskLogsPassesSinceAndUntil(t *testing.T) {
	b := newBackend(t)
	c := serveLocal(t, b)
	ctx := context.Background()
	since := time.Date(2026, 12, 7, 10, 0, 0, 500, time.UTC)
	until := since.Add(time.Hour)
	var out strings.Builder
	if err := c.TaskLogs(ctx, "t1", api.LogOptions{Since: since, Until: until}, &out); err != nil || out.String() != "a line\n" {
		t.Fatalf("logs: %q %v", out.String(), err)
	}
	b.mu.Lock()
	got := b.logOptions
	b.mu.Unlock()
	if !got.Since.Equal(since) || !got.Until.Equal(until) {
		t.Errorf("backend asked since %s until %s", got.Since, got.Until)
	}
	err := c.TaskLogs(ctx, "t1", api.LogOptions{Since: until, Until: since}, io.Discard)
	if !errors.Is(err, api.ErrBadRequest) || !strings.Contains(err.Error(), "is before since") {
		t.Errorf("until before since: %v", err)
	}
}

func TestSecretInspectNeverCarriesData(t *testing.T) {
	c := serveLocal(t, newBackend(t))
	s, err := c.Secret(context.Background(), "pw")
	if err != nil || s.Name != "pw" || s.Data != nil {
		t.Errorf("secret: %v %v", s, err)
	}
}

func TestLocalSocketServesNoInternalEndpoints(t *testing.T) {
	c := serveLocal(t, newBackend(t))
	if _, err := c.Apply(context.Background(), []byte{4, '{', '}'}); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("internal apply on the socket: %v", err)
	}
}

// pki is a cluster CA with manager and worker certificates, and a foreign CA.
type pki struct {
	root, foreign *ca.RootCA
	manager       tls.Certificate
	worker        tls.Certificate
	stranger      tls.Certificate
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	issue := func(root *ca.RootCA, id string, role ca.Role) tls.Certificate {
		key, csr, err := ca.NewNodeKeyAndCSR(id)
		if err != nil {
			t.Fatal(err)
		}
		certPEM, err := root.IssueNodeCert(csr, id, role, 0, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.X509KeyPair(certPEM, key)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	root, err := ca.NewRootCA("c1")
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := ca.NewRootCA("c2")
	if err != nil {
		t.Fatal(err)
	}
	return &pki{root: root, foreign: foreign,
		manager: issue(root, "m1", ca.RoleManager), worker: issue(root, "w1", ca.RoleWorker),
		stranger: issue(foreign, "m9", ca.RoleManager)}
}

func serveRemote(t *testing.T, b server.Backend, p *pki) string {
	t.Helper()
	addr, _ := serveRemoteCounting(t, b, p)
	return addr
}

// serveRemoteCounting is serveRemote that also counts the connections it accepts.
func serveRemoteCounting(t *testing.T, b server.Backend, p *pki) (string, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(server.NewRemoteHandler(b))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the stranger's refused handshake
	srv.TLS = ca.ServerTLSConfig(p.root.Cert(), p.manager, ca.WithOptionalClientCert())
	srv.TLS.NextProtos = []string{"http/1.1"}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), &conns
}

// An agent sends a request per task: a TLS handshake for each would cost more CPU
// than the request. Answers too big for the server to buffer come chunked, and the
// JSON decoder stops before their last chunk.
func TestClientReusesItsConnection(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t)
	b.members["w1"] = true
	b.nodeTasks = 100
	addr, conns := serveRemoteCounting(t, b, p)
	worker := remoteClient(t, addr, p.root.Cert(), &p.worker)
	for range 5 {
		if _, err := worker.Heartbeat(context.Background(), api.HeartbeatRequest{}); err != nil {
			t.Fatal(err)
		}
		if tasks, _, err := worker.NodeTasks(context.Background(), "w1", api.Query{}); err != nil || len(tasks) != 100 {
			t.Fatalf("NodeTasks: %d tasks, %v", len(tasks), err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("10 requests one after the other took %d connections, want 1", n)
	}
}

func remoteClient(t *testing.T, addr string, root *x509.Certificate, cert *tls.Certificate) *api.Client {
	t.Helper()
	cfg := ca.ClientTLSConfig(root, tls.Certificate{}, ca.ManagerServerName)
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	c, err := api.New(addr, api.WithTLS(cfg))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRemoteAccessComesFromTheCertificate(t *testing.T) {
	p := newPKI(t)
	b := newBackend(t)
	b.members["m1"], b.members["w1"] = true, true
	addr := serveRemote(t, b, p)
	ctx := context.Background()
	root := p.root.Cert()

	anon := remoteClient(t, addr, root, nil)
	manager := remoteClient(t, addr, root, &p.manager)
	worker := remoteClient(t, addr, root, &p.worker)
	stranger := remoteClient(t, addr, root, &p.stranger)

	if _, _, err := anon.Nodes(ctx, api.Query{}); !errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("no certificate: %v", err)
	}
	if _, _, err := worker.Nodes(ctx, api.Query{}); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("worker on a manager endpoint: %v", err)
	}
	if _, err := worker.Apply(ctx, []byte{byte(command.CmdNodeUpdate), '{', '}'}); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("worker forwarding a command: %v", err)
	}
	if _, _, err := manager.Nodes(ctx, api.Query{}); err != nil {
		t.Errorf("manager: %v", err)
	}
	if idx, err := manager.Apply(ctx, []byte{byte(command.CmdNodeUpdate), '{', '}'}); err != nil || idx != 42 {
		t.Errorf("manager forwarding a command: %d %v", idx, err)
	}
	if _, err := manager.Apply(ctx, []byte{250}); !errors.Is(err, api.ErrUnknownCommand) {
		t.Errorf("unknown command: %v", err)
	}
	// The role in the answer is the certificate's, whatever the request says.
	if hb, err := worker.Heartbeat(ctx, api.HeartbeatRequest{}); err != nil || hb.Role != model.RoleWorker {
		t.Errorf("worker heartbeat: %+v %v", hb, err)
	}
	if _, _, err := stranger.Nodes(ctx, api.Query{}); err == nil || !errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("certificate of another CA: %v", err)
	}
	// Joining needs no certificate, only a good token.
	if _, err := anon.RequestJoin(ctx, api.NodeJoinRequest{Token: "bad"}); !errors.Is(err, api.ErrInvalidToken) {
		t.Errorf("join with a bad token: %v", err)
	}
	if resp, err := anon.RequestJoin(ctx, api.NodeJoinRequest{Token: "good"}); err != nil || resp.NodeID != "n9" {
		t.Errorf("join: %+v %v", resp, err)
	}
	// Node administration is not on the port.
	if err := manager.Unlock(ctx, "x"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("unlock over the port: %v", err)
	}
	// A removed node's certificate no longer works.
	b.mu.Lock()
	delete(b.members, "m1")
	b.mu.Unlock()
	if _, _, err := manager.Nodes(ctx, api.Query{}); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("certificate of a removed node: %v", err)
	}
}

func (b *backend) NodeTasks(_ context.Context, ref string, _ api.Query) ([]*model.Task, api.QueryMeta, error) {
	tasks := []*model.Task{{ID: "t-" + ref, ServiceID: "s", NodeID: ref}}
	for i := 1; i < b.nodeTasks; i++ {
		tasks = append(tasks, &model.Task{ID: fmt.Sprintf("t-%s-%d", ref, i), ServiceID: "s", NodeID: ref})
	}
	return tasks, api.QueryMeta{Index: 3}, nil
}

func (b *backend) ReportTaskStatus(_ context.Context, nodeID string, reports []api.TaskStatusReport) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reported = append(b.reported, nodeID)
	return nil
}

func (b *backend) DeployStack(_ context.Context, req *api.StackDeployRequest) (*api.StackDeployResponse, error) {
	// The handler hands the secret's content to the backend intact.
	if string(req.SecretData["pw"]) != "hunter2" || req.Stack.Name != "web" {
		return nil, fmt.Errorf("%w: request mangled", api.ErrBadRequest)
	}
	return &api.StackDeployResponse{Index: 5, Changes: []api.ObjectChange{{Kind: "secret", Name: "web_pw", Action: api.ActionCreated, Version: 1}}}, nil
}

// agentClients serves a backend on the port, and returns it with the clients of a
// worker (w1) and of a manager (m1), both members.
func agentClients(t *testing.T) (b *backend, worker, manager *api.Client) {
	p := newPKI(t)
	b = newBackend(t)
	b.members["m1"], b.members["w1"] = true, true
	addr := serveRemote(t, b, p)
	root := p.root.Cert()
	return b, remoteClient(t, addr, root, &p.worker), remoteClient(t, addr, root, &p.manager)
}

// An agent reads its own node's tasks only, and its reports are filed under the node
// of its certificate, whatever they say.
func TestAgentEndpointsTakeTheNodeFromTheCertificate(t *testing.T) {
	b, worker, manager := agentClients(t)
	ctx := context.Background()

	if tasks, meta, err := worker.NodeTasks(ctx, "w1", api.Query{}); err != nil || len(tasks) != 1 || meta.Index != 3 {
		t.Errorf("worker reading its own tasks: %v %+v %v", tasks, meta, err)
	}
	if _, _, err := worker.NodeTasks(ctx, "m1", api.Query{}); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("worker reading another node's tasks: %v", err)
	}
	if _, _, err := manager.NodeTasks(ctx, "w1", api.Query{}); err != nil {
		t.Errorf("manager reading a node's tasks: %v", err)
	}
	if err := worker.ReportTaskStatus(ctx, []api.TaskStatusReport{{TaskID: "t1", Status: model.TaskStatus{State: model.TaskRunning}}}); err != nil {
		t.Fatal(err)
	}
	if len(b.reported) != 1 || b.reported[0] != "w1" {
		t.Errorf("reports filed under %v, want w1", b.reported)
	}
	// Stacks are for managers and the local socket.
	if _, err := worker.DeployStack(ctx, &api.StackDeployRequest{}); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("worker deploying a stack: %v", err)
	}
	local := serveLocal(t, b)
	resp, err := local.DeployStack(ctx, &api.StackDeployRequest{Stack: &spec.Stack{Name: "web"}, SecretData: map[string][]byte{"pw": []byte("hunter2")}})
	if err != nil || resp.Index != 5 || len(resp.Changes) != 1 {
		t.Errorf("deploy over the socket: %+v %v", resp, err)
	}
	// The agent endpoint of the port is not on the socket.
	if err := local.ReportTaskStatus(ctx, nil); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("task status on the socket: %v", err)
	}
}

func (b *backend) NodeNetworkView(_ context.Context, ref string, q api.Query) (*api.NetworkView, api.QueryMeta, error) {
	b.mu.Lock()
	b.viewQueries = append(b.viewQueries, q)
	b.mu.Unlock()
	v := &api.NetworkView{Underlay: "198.18.0.9", Endpoints: []api.NetworkEndpoint{{Network: "na", NodeID: ref, Addr: "10.0.1.5", Node: "198.18.0.9"}}}
	if ref == "m1" {
		// The encoding goes as it is, whatever the fields say.
		enc, err := json.Marshal(v)
		return &api.NetworkView{Encoded: enc}, api.QueryMeta{Index: 8}, err
	}
	return v, api.QueryMeta{Index: 7}, nil
}

// The network watch is an agent endpoint: a worker reads its own node's view only,
// and the blocking query's index and wait reach the backend.
func TestNodeNetworkViewEndpoint(t *testing.T) {
	b, worker, manager := agentClients(t)
	ctx := context.Background()

	v, meta, err := worker.NodeNetworkView(ctx, "w1", api.Query{Index: 5, Wait: 2 * time.Second})
	if err != nil || meta.Index != 7 || v.Underlay != "198.18.0.9" || len(v.Endpoints) != 1 || v.Endpoints[0].NodeID != "w1" {
		t.Errorf("worker reading its own view: %+v %+v %v", v, meta, err)
	}
	b.mu.Lock()
	got := slices.Clone(b.viewQueries)
	b.mu.Unlock()
	if len(got) != 1 || got[0].Index != 5 || got[0].Wait != 2*time.Second {
		t.Errorf("queries reaching the backend: %+v", got)
	}
	if _, _, err := worker.NodeNetworkView(ctx, "m1", api.Query{}); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("worker reading another node's view: %v", err)
	}
	if _, _, err := manager.NodeNetworkView(ctx, "w1", api.Query{}); err != nil {
		t.Errorf("manager reading a node's view: %v", err)
	}
	v, meta, err = manager.NodeNetworkView(ctx, "m1", api.Query{})
	if err != nil || meta.Index != 8 || v.Underlay != "198.18.0.9" || len(v.Endpoints) != 1 || v.Endpoints[0].NodeID != "m1" {
		t.Errorf("encoded view: %+v %+v %v", v, meta, err)
	}
	b.setPhase(api.PhaseWorker)
	if _, _, err := worker.NodeNetworkView(ctx, "w1", api.Query{}); err == nil {
		t.Error("a node that is not a manager served a network view")
	}
}
