package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/berthd/berth/applier"
	"github.com/berthd/berth/applier/webhook"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/control"
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

// SourceToken implements api.Backend: the remote is this manager's port.
func (n *Node) SourceToken(ctx context.Context, name string, rotate bool) (*api.SourceTokenResponse, error) {
	token, err := withControl(n, func(c *control.Control) (string, error) { return c.SourceToken(ctx, name, rotate) })
	if err != nil {
		return nil, err
	}
	return &api.SourceTokenResponse{URL: "https://" + n.metaCopy().AdvertiseAddr + "/git/" + name + ".git", Token: token,
		CAFile: n.dir.path(certsDir, caCertFile)}, nil
}

// applierConfig is the GitOps applier's configuration on this manager.
func (m *manager) applierConfig(logger *slog.Logger) applier.Config {
	return applier.Config{Cluster: m.st, Dir: m.n.dir.sources(), Logger: logger, Mirrors: m.mirrors}
}

// Plan implements api.Backend. Stacks are planned by the control plane on this
// manager's state; a source by the applier on the leader, which holds the sources' repositories (another manager asks it).
func (n *Node) Plan(ctx context.Context, req *api.PlanRequest) (*api.PlanResponse, error) {
	if req.Source == "" {
		return withControl(n, func(c *control.Control) (*api.PlanResponse, error) { return c.PlanStacks(req.Stacks) })
	}
	m, err := n.readyManager()
	if err != nil {
		return nil, err
	}
	if m.st.IsLeader() {
		return applier.PreviewSource(ctx, m.applierConfig(m.logger.With("component", "applier")), req.Source, req.Revision)
	}
	c, err := n.leaderClient(m, "a source is planned on the leader")
	if err != nil {
		return nil, err
	}
	return c.Plan(ctx, req)
}

// leaderClient is a client of the leader's API, for what only the leader holds: the
// sources' repositories. what says what needs the leader, for the error.
func (n *Node) leaderClient(m *manager, what string) (*api.Client, error) {
	addr, _ := m.st.Leader()
	hc := n.hc.Load()
	if addr == "" || hc == nil {
		return nil, fmt.Errorf("%w: %s, and there is none; try again once the managers have elected one", store.ErrNoLeader, what)
	}
	return api.New(addr, api.WithHTTPClient(hc))
}

// pushCluster is what the push server needs of this manager.
type pushCluster struct{ n *Node }

func (p pushCluster) State() (*state.Store, error) {
	m, err := p.n.readyManager()
	if err != nil {
		return nil, err
	}
	return m.state(), nil
}

func (p pushCluster) ApplyLeader(ctx context.Context, t store.CommandType, body any) (uint64, error) {
	m, err := p.n.readyManager()
	if err != nil {
		return 0, err
	}
	return m.st.ApplyLeader(ctx, t, body)
}

func (p pushCluster) Source(ctx context.Context, name string, q api.Query) (*api.SourceInfo, api.QueryMeta, error) {
	return p.n.Source(ctx, name, q)
}

func (p pushCluster) Services(ctx context.Context, f api.ServiceFilter, q api.Query) ([]*api.ServiceStatus, api.QueryMeta, error) {
	return p.n.Services(ctx, f, q)
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
