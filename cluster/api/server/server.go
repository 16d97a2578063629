package server

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store/sealed"
)

// maxCommandBody bounds what managers send each other: raft commands forwarded to the
// leader (a stack deploy with its secrets) and agents' batches of task reports. The
// limits of client requests are spec's (spec.MaxRequestBytes and larger ones).
const maxCommandBody = 64 << 20

// remoteAccess is who may call an endpoint on the node's TCP port. Identity always
// comes from the verified client certificate, never from the request.
type remoteAccess uint8

const (
	// remoteNone: not served on the TCP port at all (local administration).
	remoteNone remoteAccess = iota
	// remotePublic: anyone who reaches the port; the request carries its own
	// credential (the join token).
	remotePublic
	// remoteNode: any node of the cluster (worker or manager certificate).
	remoteNode
	// remoteManager: managers only.
	remoteManager
)

// gate is what the node must be for an endpoint to be served.
type gate uint8

const (
	// anyPhase: the backend decides (info, init, join, leave, unlock).
	anyPhase gate = iota
	// managerPhase: an unlocked manager holding the cluster state.
	managerPhase
)

// caller is who sent a request.
type caller struct {
	local bool
	// admin: an operator's client certificate on the TCP port, which may do what
	// the local socket may.
	admin bool
	// id is the verified certificate's identity on the TCP port.
	id ca.Identity
}

type route struct {
	pattern string
	local   bool
	remote  remoteAccess
	gate    gate
	handle  func(h *handler, w http.ResponseWriter, r *http.Request, c caller) error
}

// routes is the whole API. See the package documentation for what each endpoint does.
var routes = []route{
	{"GET /v1/info", true, remoteNode, anyPhase, (*handler).info},
	// Prometheus scrapes a manager with an admin client certificate (or the opt-in
	// plain --metrics-addr).
	{"GET /metrics", true, remoteManager, anyPhase, (*handler).metrics},
	{"POST /v1/cluster/init", true, remoteNone, anyPhase, (*handler).init},
	{"POST /v1/cluster/join", true, remoteNone, anyPhase, (*handler).join},
	// An operator's client certificate is made on a manager's own socket only: a
	// certificate never mints another.
	{"POST /v1/ca/client-cert", true, remoteNone, managerPhase, (*handler).issueClientCert},
	{"POST /v1/cluster/leave", true, remoteNone, anyPhase, (*handler).leave},
	// A backup holds the node's key: the local socket only.
	{"GET /v1/cluster/backup", true, remoteNone, managerPhase, (*handler).backup},
	{"POST /v1/unlock", true, remoteNone, anyPhase, (*handler).unlock},

	{"GET /v1/cluster", true, remoteManager, managerPhase, (*handler).cluster},
	{"POST /v1/cluster/update", true, remoteManager, managerPhase, (*handler).updateCluster},
	{"GET /v1/cluster/unlock-key", true, remoteManager, managerPhase, unlockKeyHandler(false)},
	{"POST /v1/cluster/unlock-key/rotate", true, remoteManager, managerPhase, unlockKeyHandler(true)},
	{"GET /v1/cluster/join-tokens/{role}", true, remoteManager, managerPhase, joinTokenHandler(false)},
	{"POST /v1/cluster/join-tokens/{role}/rotate", true, remoteManager, managerPhase, joinTokenHandler(true)},

	{"GET /v1/nodes", true, remoteManager, managerPhase, (*handler).nodes},
	{"GET /v1/nodes/{ref}", true, remoteManager, managerPhase, (*handler).node},
	{"POST /v1/nodes/{ref}/update", true, remoteManager, managerPhase, (*handler).updateNode},
	{"POST /v1/nodes/{ref}/promote", true, remoteManager, managerPhase, setRoleHandler(model.RoleManager)},
	{"POST /v1/nodes/{ref}/demote", true, remoteManager, managerPhase, setRoleHandler(model.RoleWorker)},
	{"DELETE /v1/nodes/{ref}", true, remoteManager, managerPhase, (*handler).removeNode},

	{"POST /v1/secrets", true, remoteManager, managerPhase, (*handler).createSecret},
	{"GET /v1/secrets", true, remoteManager, managerPhase, (*handler).secrets},
	{"POST /v1/configs", true, remoteManager, managerPhase, (*handler).createConfig},
	{"GET /v1/configs", true, remoteManager, managerPhase, (*handler).configs},
	{"GET /v1/secrets/{ref}", true, remoteManager, managerPhase, (*handler).secret},
	{"DELETE /v1/secrets/{ref}", true, remoteManager, managerPhase, (*handler).removeSecret},
	{"GET /v1/configs/{ref}", true, remoteManager, managerPhase, (*handler).config},
	{"DELETE /v1/configs/{ref}", true, remoteManager, managerPhase, (*handler).removeConfig},

	{"POST /v1/stacks", true, remoteManager, managerPhase, (*handler).deployStack},
	{"GET /v1/stacks", true, remoteManager, managerPhase, (*handler).stacks},
	{"DELETE /v1/stacks/{name}", true, remoteManager, managerPhase, (*handler).removeStack},
	{"POST /v1/plan", true, remoteManager, managerPhase, (*handler).plan},
	{"GET /v1/services", true, remoteManager, managerPhase, (*handler).services},
	{"GET /v1/services/{ref}", true, remoteManager, managerPhase, (*handler).service},
	{"POST /v1/services/{ref}/scale", true, remoteManager, managerPhase, (*handler).scaleService},
	{"POST /v1/services/{ref}/update", true, remoteManager, managerPhase, (*handler).updateService},
	{"POST /v1/services/{ref}/rollback", true, remoteManager, managerPhase, (*handler).rollbackService},
	{"POST /v1/services", true, remoteManager, managerPhase, (*handler).createService},
	{"DELETE /v1/services/{ref}", true, remoteManager, managerPhase, (*handler).removeService},
	{"GET /v1/tasks", true, remoteManager, managerPhase, (*handler).tasks},
	{"GET /v1/events", true, remoteManager, managerPhase, (*handler).events},
	{"GET /v1/nodes/{ref}/tasks", true, remoteNode, managerPhase, (*handler).nodeTasks},
	{"GET /v1/nodes/{ref}/network", true, remoteNode, managerPhase, (*handler).nodeNetworkView},
	{"GET /v1/tasks/{id}/runtime", true, remoteNode, managerPhase, (*handler).taskRuntime},
	{"GET /v1/tasks/{id}/logs", true, remoteManager, anyPhase, (*handler).taskLogs},
	{"POST /v1/tasks/status", false, remoteNode, managerPhase, (*handler).taskStatus},
	{"POST /v1/images/load", true, remoteManager, anyPhase, (*handler).loadImage},

	{"POST /v1/sources", true, remoteManager, managerPhase, (*handler).addSource},
	{"GET /v1/sources", true, remoteManager, managerPhase, (*handler).sources},
	{"GET /v1/sources/{name}", true, remoteManager, managerPhase, (*handler).source},
	{"POST /v1/sources/{name}/update", true, remoteManager, managerPhase, (*handler).updateSource},
	{"DELETE /v1/sources/{name}", true, remoteManager, managerPhase, (*handler).removeSource},
	{"GET /v1/sources/{name}/token", true, remoteManager, managerPhase, sourceTokenHandler(false)},
	{"POST /v1/sources/{name}/token/rotate", true, remoteManager, managerPhase, sourceTokenHandler(true)},

	// A login link of the web dashboard is made on a manager's own socket only, as
	// an operator's client certificate is.
	{"POST /v1/ui/token", true, remoteNone, managerPhase, (*handler).uiToken},

	{"POST /v1/join", false, remotePublic, managerPhase, (*handler).requestJoin},
	{"POST /v1/heartbeat", false, remoteNode, managerPhase, (*handler).heartbeat},
	{"POST /v1/node/certificate", false, remoteNode, managerPhase, (*handler).renewCertificate},
	{"POST /v1/internal/apply", false, remoteManager, managerPhase, (*handler).apply},
	{"POST /v1/internal/raft/add", false, remoteManager, managerPhase, raftMemberHandler(true)},
	{"POST /v1/internal/raft/remove", false, remoteManager, managerPhase, raftMemberHandler(false)},
	{"GET /v1/internal/ping", false, remoteManager, managerPhase, (*handler).ping},
}

// HandlerOption configures a handler.
type HandlerOption func(*handler)

// WithLogger logs requests (debug) and internal errors (error) to logger.
func WithLogger(logger *slog.Logger) HandlerOption {
	return func(h *handler) {
		if logger != nil {
			h.logger = logger
		}
	}
}

// WithPublicHandler serves pattern on the node's TCP port with next, which checks
// its callers' credentials itself: webhooks (a signature) and Git over HTTP (a
// token) come from machines that hold no certificate of the cluster.
func WithPublicHandler(pattern string, next http.Handler) HandlerOption {
	return func(h *handler) {
		if !h.local {
			h.mux.Handle(pattern, next)
		}
	}
}

type handler struct {
	b      Backend
	local  bool
	logger *slog.Logger
	mux    *http.ServeMux
}

// NewLocalHandler serves the API on the node's unix socket. Whoever can open the
// socket (root: it is created 0600) administers the node; the endpoints between nodes
// are not served there.
func NewLocalHandler(b Backend, opts ...HandlerOption) http.Handler {
	return newHandler(b, true, opts)
}

// NewRemoteHandler serves the API on the node's mutual-TLS port. Every endpoint but
// the join requires a client certificate of the cluster, and the caller's role comes
// from it; node-local administration (init, join, leave, unlock) is not served there.
func NewRemoteHandler(b Backend, opts ...HandlerOption) http.Handler {
	return newHandler(b, false, opts)
}

func newHandler(b Backend, local bool, opts []HandlerOption) http.Handler {
	h := &handler{b: b, local: local, logger: slog.New(slog.DiscardHandler), mux: http.NewServeMux()}
	for _, o := range opts {
		o(h)
	}
	for _, rt := range routes {
		if (local && !rt.local) || (!local && rt.remote == remoteNone) {
			continue
		}
		h.mux.HandleFunc(rt.pattern, h.wrap(rt))
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		where := "the remote port"
		if local {
			where = "the local socket"
		}
		h.writeError(w, r, fmt.Errorf("%w: no endpoint %s %s on %s", state.ErrNotFound, r.Method, r.URL.Path, where))
	})
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *handler) wrap(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				h.logger.Error("API handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p))
				h.writeError(w, r, fmt.Errorf("internal error in %s %s (this is a bug in berth, please report it)", r.Method, r.URL.Path))
			}
		}()
		c, err := h.authenticate(r, rt)
		if err == nil {
			err = h.checkPhase(rt)
		}
		if err == nil {
			err = rt.handle(h, w, r, c)
		}
		if err != nil {
			h.writeError(w, r, err)
		}
		h.logger.Debug("API request", "method", r.Method, "path", r.URL.Path, "local", h.local,
			"node", c.id.NodeID, "took", time.Since(start).Round(time.Microsecond), "error", err)
	}
}

// authenticate works out who the caller is. On the TCP port the certificate was
// verified against the cluster CA by the TLS handshake; here its role is checked
// against the endpoint and its node must still be a member.
func (h *handler) authenticate(r *http.Request, rt route) (caller, error) {
	if h.local {
		return caller{local: true}, nil
	}
	var roles []ca.Role
	switch rt.remote {
	case remotePublic:
		return caller{}, nil
	case remoteManager:
		roles = []ca.Role{ca.RoleManager}
	case remoteNode:
		roles = []ca.Role{ca.RoleManager, ca.RoleWorker}
	default:
		return caller{}, api.ErrLocalOnly
	}
	if rt.local {
		// What an operator does on the socket: an admin certificate may too (the
		// endpoints between nodes are not local, so it never acts as a node).
		roles = append(roles, ca.RoleAdmin)
	}
	id, err := ca.RequireIdentity(r, h.b.Status().ClusterID, roles...)
	if err != nil {
		return caller{id: id}, err
	}
	if id.Role == ca.RoleAdmin {
		// Not a node: its expiry, a day by default, is what ends it.
		return caller{admin: true, id: id}, nil
	}
	if err := h.b.Member(id.NodeID); err != nil {
		return caller{id: id}, err
	}
	return caller{id: id}, nil
}

// operator reports whether the caller administers the cluster (the local socket or
// an admin certificate), rather than being a node of it.
func (c caller) operator() bool { return c.local || c.admin }

func (h *handler) checkPhase(rt route) error {
	if rt.gate != managerPhase {
		return nil
	}
	switch h.b.Status().Phase {
	case api.PhaseManager:
		return nil
	case api.PhaseLocked:
		return sealed.ErrLocked
	case api.PhaseWorker:
		return api.ErrNotManager
	default:
		return api.ErrNotInCluster
	}
}

func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := toError(err)
	if e.StatusCode >= 500 && e.Code == api.CodeInternal {
		h.logger.Error("API request failed", "method", r.Method, "path", r.URL.Path, "error", e.Message)
	}
	writeJSON(w, e.StatusCode, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The status is sent; an encoding error can only be a broken connection.
	_ = json.NewEncoder(w).Encode(v)
}

func ok(w http.ResponseWriter, v any) error {
	if v == nil {
		v = struct{}{}
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func okQuery(w http.ResponseWriter, v any, meta api.QueryMeta) error {
	w.Header().Set(api.IndexHeader, strconv.FormatUint(meta.Index, 10))
	return ok(w, v)
}
