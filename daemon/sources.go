package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/berthd/berth/applier"
	"github.com/berthd/berth/applier/webhook"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store"
)

// hookSources is what the webhook receiver needs of a manager: any manager answers a
// webhook, and its sync request goes through raft to the leader's applier.
type hookSources struct{ n *Node }

// WebhookTarget implements webhook.Sources.
func (h hookSources) WebhookTarget(_ context.Context, name string) ([]byte, string, error) {
	m, err := h.n.readyManager()
	if err != nil {
		return nil, "", err
	}
	tx := m.state().ReadTxn()
	src, err := tx.Source(nil, name)
	if errors.Is(err, state.ErrNotFound) || (err == nil && src.WebhookSecretRef == "") {
		return nil, "", fmt.Errorf("source %s: %w", name, webhook.ErrUnknownSource)
	}
	if err != nil {
		return nil, "", err
	}
	sec, err := tx.Secret(nil, src.WebhookSecretRef)
	if err != nil {
		return nil, "", fmt.Errorf("source %s: its webhook secret: %w", name, err)
	}
	return sec.Data, src.Branch, nil
}

// RequestSync implements webhook.Sources. The revision the hook names is not passed
// on: the applier fetches the branch's tip, which is at least as new.
func (h hookSources) RequestSync(ctx context.Context, name, _ string) error {
	_, err := h.n.UpdateSource(ctx, name, &api.SourceUpdateRequest{RequestSync: true})
	return err
}

// SourceToken implements server.Backend: the remote is this manager's port.
func (n *Node) SourceToken(ctx context.Context, name string, rotate bool) (*api.SourceTokenResponse, error) {
	token, err := call(n.readyControl, func(c *control.Control) (string, error) { return c.SourceToken(ctx, name, rotate) })
	if err != nil {
		return nil, err
	}
	return &api.SourceTokenResponse{URL: "https://" + n.metaCopy().AdvertiseAddr + "/git/" + name + ".git", Token: token,
		CAFile: n.dir.path(certsDir, caCertFile)}, nil
}

// applierConfig is the GitOps applier's configuration on this manager.
func (m *manager) applierConfig(logger *slog.Logger) applier.Config {
	return applier.Config{Cluster: applierCluster{m: func() (*manager, error) { return m, nil }}, Dir: m.n.dir.sources(), Logger: logger,
		Mirrors: m.mirrors, PushPlans: m.pushPlans, Metrics: m.n.gitops}
}

// Plan implements server.Backend. Stacks are planned by the control plane on this
// manager's state; a source's revision is loaded by the applier on the leader, which
// holds the sources' repositories (another manager asks it), and planned by the
// control plane there.
func (n *Node) Plan(ctx context.Context, req *api.PlanRequest) (*api.PlanResponse, error) {
	if req.Source == "" {
		return call(n.readyControl, func(c *control.Control) (*api.PlanResponse, error) { return c.PlanStacks(req.Stacks) })
	}
	m, err := n.readyManager()
	if err != nil {
		return nil, err
	}
	if m.st.IsLeader() {
		return applier.PreviewSource(ctx, m.applierConfig(m.logger.With("component", "applier")), req.Source, req.Revision)
	}
	c, err := m.ctl.LeaderClient("a source is planned on the leader")
	if err != nil {
		return nil, err
	}
	return c.Plan(ctx, req)
}

// applierCluster is the cluster as the applier and the push server see it (their
// applier.Cluster): the state, control plane and raft store of the manager m returns.
// The raft commands of syncs and pushes are made here, not in the applier.
type applierCluster struct{ m func() (*manager, error) }

func (c applierCluster) State() (*state.Store, error) {
	m, err := c.m()
	if err != nil {
		return nil, err
	}
	return m.state(), nil
}

func (c applierCluster) WaitSources(ctx context.Context, index uint64) ([]*model.Source, uint64, error) {
	st, err := c.State()
	if err != nil {
		return nil, 0, err
	}
	return control.WaitSources(ctx, st, index)
}

func (c applierCluster) Barrier(timeout time.Duration) error {
	m, err := c.m()
	if err != nil {
		return err
	}
	return m.st.Barrier(timeout)
}

func (c applierCluster) Plan(_ context.Context, src *model.Source, stacks *applier.LoadedStacks) (applier.Plan, error) {
	st, err := c.State()
	if err != nil {
		return nil, err
	}
	return control.PlanSource(st.ReadTxn(), src, stacks.Checked(), stacks.DependsOn, model.NewID)
}

func (c applierCluster) Replan(_ context.Context, plan applier.Plan) (applier.Plan, error) {
	st, err := c.State()
	if err != nil {
		return nil, err
	}
	// A plan the applier holds is one Plan made.
	return plan.(*control.SourcePlan).Current(st.ReadTxn())
}

func (c applierCluster) Preview(_ context.Context, plan applier.Plan, sha string) ([]*api.ServicePlacement, bool, error) {
	st, err := c.State()
	if err != nil {
		return nil, false, err
	}
	return plan.(*control.SourcePlan).Preview(st, sha, model.NewID, time.Now())
}

func (c applierCluster) ApplySync(ctx context.Context, s *applier.Sync) error {
	plan, _ := s.Plan.(*control.SourcePlan)
	return c.applyLeader(ctx, command.CmdSourceSync, control.SyncCommand(s.Source, s.Now, s.Fetched, s.Status, s.Record, plan))
}

func (c applierCluster) ApplyPush(ctx context.Context, source, old, new string, pack []byte) error {
	return c.applyLeader(ctx, command.CmdSourcePush, &command.SourcePush{Name: source, Old: old, New: new, Pack: pack})
}

func (c applierCluster) applyLeader(ctx context.Context, t command.Type, body any) error {
	m, err := c.m()
	if err != nil {
		return err
	}
	_, err = m.st.ApplyLeader(ctx, t, body)
	if errors.Is(err, store.ErrNotLeader) {
		return applier.NotLeader(err)
	}
	return err
}

func (c applierCluster) Source(ctx context.Context, name string, q api.Query) (*api.SourceInfo, api.QueryMeta, error) {
	m, err := c.m()
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	return m.ctl.Source(ctx, name, q)
}

func (c applierCluster) Services(ctx context.Context, f api.ServiceFilter, q api.Query) ([]*api.ServiceStatus, api.QueryMeta, error) {
	m, err := c.m()
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	return m.ctl.Services(ctx, f, q)
}

// pushRouter serves Git pushes on the leader, which checks them against its
// repository, replicates them and runs the applier; another manager hands a push to
// the leader over mutual TLS, and serves fetches and clones itself from its copy of
// the replicated repository.
type pushRouter struct {
	n     *Node
	local http.Handler
}

func (r *pushRouter) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	m, err := r.n.readyManager()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	fetch := strings.HasSuffix(req.URL.Path, "/git-upload-pack") || req.URL.Query().Get("service") == "git-upload-pack"
	if fetch || m.st.IsLeader() {
		r.local.ServeHTTP(w, req)
		return
	}
	addr, _ := m.st.Leader()
	hc := r.n.hc.Load()
	if addr == "" || hc == nil {
		http.Error(w, "no leader: the cluster has no majority of managers; push again once it has", http.StatusServiceUnavailable)
		return
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "https", Host: addr})
			pr.Out.Host = pr.In.Host
		},
		Transport:     hc.Transport,
		FlushInterval: -1, // the push's progress lines stream as they come
	}
	proxy.ServeHTTP(w, req)
}

func (c applierCluster) RecordPushRejection(ctx context.Context, source string, r model.PushRejection) error {
	return c.applyLeader(ctx, command.CmdSourcePushRejected, &command.SourcePushRejected{Name: source, Rejection: r})
}
