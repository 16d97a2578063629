package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store/sealed"
	"github.com/berthd/berth/spec"
)

// DefaultWait is how long a blocking query waits when it gives an index but no wait.
const DefaultWait = 5 * time.Minute

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
	{"POST /v1/cluster/init", true, remoteNone, anyPhase, (*handler).init},
	{"POST /v1/cluster/join", true, remoteNone, anyPhase, (*handler).join},
	{"POST /v1/cluster/leave", true, remoteNone, anyPhase, (*handler).leave},
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
	{"POST /v1/nodes/{ref}/promote", true, remoteManager, managerPhase, setRoleHandler(state.RoleManager)},
	{"POST /v1/nodes/{ref}/demote", true, remoteManager, managerPhase, setRoleHandler(state.RoleWorker)},
	{"DELETE /v1/nodes/{ref}", true, remoteManager, managerPhase, (*handler).removeNode},

	{"POST /v1/secrets", true, remoteManager, managerPhase, (*handler).createSecret},
	{"GET /v1/secrets", true, remoteManager, managerPhase, (*handler).secrets},
	{"POST /v1/configs", true, remoteManager, managerPhase, (*handler).createConfig},
	{"GET /v1/configs", true, remoteManager, managerPhase, (*handler).configs},

	{"POST /v1/stacks", true, remoteManager, managerPhase, (*handler).deployStack},
	{"GET /v1/stacks", true, remoteManager, managerPhase, (*handler).stacks},
	{"DELETE /v1/stacks/{name}", true, remoteManager, managerPhase, (*handler).removeStack},
	{"POST /v1/plan", true, remoteManager, managerPhase, (*handler).plan},
	{"GET /v1/services", true, remoteManager, managerPhase, (*handler).services},
	{"GET /v1/services/{ref}", true, remoteManager, managerPhase, (*handler).service},
	{"POST /v1/services/{ref}/scale", true, remoteManager, managerPhase, (*handler).scaleService},
	{"POST /v1/services/{ref}/update", true, remoteManager, managerPhase, (*handler).updateService},
	{"POST /v1/services/{ref}/rollback", true, remoteManager, managerPhase, (*handler).rollbackService},
	{"GET /v1/tasks", true, remoteManager, managerPhase, (*handler).tasks},
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
	id, err := ca.RequireIdentity(r, h.b.Status().ClusterID, roles...)
	if err != nil {
		return caller{id: id}, err
	}
	if err := h.b.Member(id.NodeID); err != nil {
		return caller{id: id}, err
	}
	return caller{id: id}, nil
}

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

// decode reads a client's JSON body into v, at most spec.MaxRequestBytes of it. An
// empty body leaves v as it is.
func decode(r *http.Request, v any) error { return decodeLimit(r, v, spec.MaxRequestBytes) }

// decodeLimit is decode with another size limit. A field v does not have is refused:
// silently dropping it would do less than the client asked (a misspelt option, a
// client newer than this manager).
func decodeLimit(r *http.Request, v any, limit int64) error {
	return decodeBody(r, v, limit, true)
}

// decodeInternal reads what another node of the cluster sent. Unknown fields are
// ignored there, so that nodes of different versions work together while a cluster
// is upgraded one node at a time.
func decodeInternal(r *http.Request, v any, limit int64) error {
	return decodeBody(r, v, limit, false)
}

func decodeBody(r *http.Request, v any, limit int64, strict bool) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, limit))
	if strict {
		dec.DisallowUnknownFields()
	}
	err := dec.Decode(v)
	var tooBig *http.MaxBytesError
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return nil
	case errors.As(err, &tooBig):
		return fmt.Errorf("%w: the body of %s is larger than %s, its limit (see \"Limits\" in berth's README)", api.ErrTooLarge, r.Pattern, byteSize(tooBig.Limit))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badRequest("the request has %s: this manager does not know it (a misspelling, or a client newer than the manager)",
			strings.TrimPrefix(err.Error(), "json: "))
	}
	return badRequest("request body is not valid JSON: %v", err)
}

// byteSize writes a limit as people read it: 16 MiB, 64 KiB.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// query reads ?index=N&wait=D (D a Go duration, or seconds).
func query(r *http.Request) (api.Query, error) {
	var q api.Query
	v := r.URL.Query()
	if s := v.Get("index"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return q, badRequest("index %q is not a raft index", s)
		}
		q.Index = n
	}
	if s := v.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			secs, err2 := strconv.ParseUint(s, 10, 32)
			if err2 != nil {
				return q, badRequest("wait %q is not a duration (e.g. 30s)", s)
			}
			d = time.Duration(secs) * time.Second
		}
		if d < 0 {
			return q, badRequest("wait %q is negative", s)
		}
		q.Wait = d
	}
	if q.Index > 0 && q.Wait == 0 {
		q.Wait = DefaultWait
	}
	q.Wait = min(q.Wait, state.MaxBlockingWait)
	return q, nil
}

func boolParam(r *http.Request, name string) (bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, badRequest("%s=%q is not a boolean", name, s)
	}
	return b, nil
}

// ---------------------------------------------------------------------------
// Handlers: decode, call the backend, encode.

func (h *handler) info(w http.ResponseWriter, r *http.Request, _ caller) error {
	info, err := h.b.Info(r.Context())
	if err != nil {
		return err
	}
	return ok(w, info)
}

func (h *handler) init(w http.ResponseWriter, r *http.Request, _ caller) error {
	var req api.InitRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	resp, err := h.b.Init(r.Context(), &req)
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func (h *handler) join(w http.ResponseWriter, r *http.Request, _ caller) error {
	var req api.JoinRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	resp, err := h.b.Join(r.Context(), &req)
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func (h *handler) leave(w http.ResponseWriter, r *http.Request, _ caller) error {
	var req api.LeaveRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := h.b.Leave(r.Context(), &req); err != nil {
		return err
	}
	return ok(w, nil)
}

func (h *handler) unlock(w http.ResponseWriter, r *http.Request, _ caller) error {
	var req api.UnlockRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := h.b.Unlock(r.Context(), &req); err != nil {
		return err
	}
	return ok(w, nil)
}

func (h *handler) cluster(w http.ResponseWriter, r *http.Request, _ caller) error {
	c, err := h.b.Cluster(r.Context())
	if err != nil {
		return err
	}
	return ok(w, c.Redacted())
}

func (h *handler) updateCluster(w http.ResponseWriter, r *http.Request, _ caller) error {
	var req api.ClusterUpdateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	resp, err := h.b.UpdateCluster(r.Context(), &req)
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func unlockKeyHandler(rotate bool) func(*handler, http.ResponseWriter, *http.Request, caller) error {
	return func(h *handler, w http.ResponseWriter, r *http.Request, _ caller) error {
		resp, err := h.b.UnlockKey(r.Context(), rotate)
		if err != nil {
			return err
		}
		return ok(w, resp)
	}
}

func joinTokenHandler(rotate bool) func(*handler, http.ResponseWriter, *http.Request, caller) error {
	return func(h *handler, w http.ResponseWriter, r *http.Request, _ caller) error {
		role := state.NodeRole(r.PathValue("role"))
		if !role.Valid() {
			return badRequest("unknown role %q: use worker or manager", role)
		}
		resp, err := h.b.JoinToken(r.Context(), role, rotate)
		if err != nil {
			return err
		}
		return ok(w, resp)
	}
}

func (h *handler) nodes(w http.ResponseWriter, r *http.Request, _ caller) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	nodes, meta, err := h.b.Nodes(r.Context(), q)
	if err != nil {
		return err
	}
	if nodes == nil {
		nodes = []*state.Node{}
	}
	return okQuery(w, nodes, meta)
}

func (h *handler) node(w http.ResponseWriter, r *http.Request, _ caller) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	n, meta, err := h.b.Node(r.Context(), r.PathValue("ref"), q)
	if err != nil {
		return err
	}
	return okQuery(w, n, meta)
}

func (h *handler) updateNode(w http.ResponseWriter, r *http.Request, _ caller) error {
	var req api.NodeUpdateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Availability != "" && !req.Availability.Valid() {
		return badRequest("unknown availability %q: use active, pause or drain", req.Availability)
	}
	resp, err := h.b.UpdateNode(r.Context(), r.PathValue("ref"), &req)
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func setRoleHandler(role state.NodeRole) func(*handler, http.ResponseWriter, *http.Request, caller) error {
	return func(h *handler, w http.ResponseWriter, r *http.Request, _ caller) error {
		resp, err := h.b.SetNodeRole(r.Context(), r.PathValue("ref"), role)
		if err != nil {
			return err
		}
		return ok(w, resp)
	}
}

func (h *handler) removeNode(w http.ResponseWriter, r *http.Request, _ caller) error {
	force, err := boolParam(r, "force")
	if err != nil {
		return err
	}
	if err := h.b.RemoveNode(r.Context(), r.PathValue("ref"), force); err != nil {
		return err
	}
	return ok(w, nil)
}

func (h *handler) createSecret(w http.ResponseWriter, r *http.Request, _ caller) error {
	var req api.ObjectCreateRequest
	if err := decodeLimit(r, &req, spec.MaxObjectRequestBytes); err != nil {
		return err
	}
	resp, err := h.b.CreateSecret(r.Context(), &req)
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func (h *handler) secrets(w http.ResponseWriter, r *http.Request, _ caller) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	list, meta, err := h.b.Secrets(r.Context(), q)
	if err != nil {
		return err
	}
	out := make([]*state.Secret, 0, len(list))
	for _, s := range list {
		// Whatever the backend returned: a listing never carries secret data.
		out = append(out, s.Redacted())
	}
	return okQuery(w, out, meta)
}

func (h *handler) createConfig(w http.ResponseWriter, r *http.Request, _ caller) error {
	var req api.ObjectCreateRequest
	if err := decodeLimit(r, &req, spec.MaxObjectRequestBytes); err != nil {
		return err
	}
	resp, err := h.b.CreateConfig(r.Context(), &req)
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func (h *handler) configs(w http.ResponseWriter, r *http.Request, _ caller) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	list, meta, err := h.b.Configs(r.Context(), q)
	if err != nil {
		return err
	}
	out := make([]*state.Config, 0, len(list))
	for _, c := range list {
		cp := c.Copy()
		cp.Data = nil
		out = append(out, cp)
	}
	return okQuery(w, out, meta)
}

func (h *handler) requestJoin(w http.ResponseWriter, r *http.Request, _ caller) error {
	var req api.NodeJoinRequest
	if err := decodeInternal(r, &req, spec.MaxRequestBytes); err != nil {
		return err
	}
	resp, err := h.b.RequestJoin(r.Context(), &req)
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func (h *handler) heartbeat(w http.ResponseWriter, r *http.Request, c caller) error {
	resp, err := h.b.Heartbeat(r.Context(), c.id)
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func (h *handler) renewCertificate(w http.ResponseWriter, r *http.Request, c caller) error {
	var req api.CertificateRequest
	if err := decodeInternal(r, &req, spec.MaxRequestBytes); err != nil {
		return err
	}
	resp, err := h.b.RenewCertificate(r.Context(), c.id, &req)
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func (h *handler) apply(w http.ResponseWriter, r *http.Request, _ caller) error {
	cmd, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxCommandBody))
	if err != nil {
		return badRequest("read command: %v", err)
	}
	if len(cmd) == 0 {
		return badRequest("empty command")
	}
	idx, err := h.b.ApplyCommand(r.Context(), cmd)
	if err != nil {
		return err
	}
	return ok(w, api.WriteResponse{Index: idx})
}

func raftMemberHandler(add bool) func(*handler, http.ResponseWriter, *http.Request, caller) error {
	return func(h *handler, w http.ResponseWriter, r *http.Request, _ caller) error {
		var req api.RaftMemberRequest
		if err := decodeInternal(r, &req, spec.MaxRequestBytes); err != nil {
			return err
		}
		if req.NodeID == "" {
			return badRequest("node_id is required")
		}
		var err error
		if add {
			err = h.b.AddVoter(r.Context(), req.NodeID)
		} else {
			err = h.b.RemoveVoter(r.Context(), req.NodeID)
		}
		if err != nil {
			return err
		}
		return ok(w, nil)
	}
}

func (h *handler) ping(w http.ResponseWriter, _ *http.Request, _ caller) error {
	return ok(w, nil)
}

// ---------------------------------------------------------------------------
// Stacks, services and tasks.

func (h *handler) deployStack(w http.ResponseWriter, r *http.Request, _ caller) error {
	// A stack with its secrets and configs can be large; the body is never logged.
	var req api.StackDeployRequest
	if err := decodeLimit(r, &req, spec.MaxStackRequestBytes); err != nil {
		return err
	}
	resp, err := h.b.DeployStack(r.Context(), &req)
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func (h *handler) plan(w http.ResponseWriter, r *http.Request, _ caller) error {
	// Like a deploy, a plan carries whole stacks with their secrets and configs.
	var req api.PlanRequest
	if err := decodeLimit(r, &req, spec.MaxStackRequestBytes); err != nil {
		return err
	}
	if (req.Source == "") == (len(req.Stacks) == 0) {
		return badRequest("a plan needs either stacks or a source, not both")
	}
	if req.Revision != "" && req.Source == "" {
		return badRequest("a revision needs a source")
	}
	resp, err := h.b.Plan(r.Context(), &req)
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func (h *handler) stacks(w http.ResponseWriter, r *http.Request, _ caller) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	list, meta, err := h.b.Stacks(r.Context(), q)
	if err != nil {
		return err
	}
	if list == nil {
		list = []*api.StackSummary{}
	}
	return okQuery(w, list, meta)
}

func (h *handler) removeStack(w http.ResponseWriter, r *http.Request, _ caller) error {
	resp, err := h.b.RemoveStack(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func (h *handler) services(w http.ResponseWriter, r *http.Request, _ caller) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	list, meta, err := h.b.Services(r.Context(), api.ServiceFilter{Stack: r.URL.Query().Get("stack")}, q)
	if err != nil {
		return err
	}
	if list == nil {
		list = []*api.ServiceStatus{}
	}
	return okQuery(w, list, meta)
}

func (h *handler) service(w http.ResponseWriter, r *http.Request, _ caller) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	s, meta, err := h.b.Service(r.Context(), r.PathValue("ref"), q)
	if err != nil {
		return err
	}
	return okQuery(w, s, meta)
}

func (h *handler) scaleService(w http.ResponseWriter, r *http.Request, _ caller) error {
	var req api.ServiceScaleRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	resp, err := h.b.ScaleService(r.Context(), r.PathValue("ref"), req.Replicas)
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func (h *handler) updateService(w http.ResponseWriter, r *http.Request, _ caller) error {
	var req api.ServiceUpdateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	resp, err := h.b.UpdateService(r.Context(), r.PathValue("ref"), &req)
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func (h *handler) rollbackService(w http.ResponseWriter, r *http.Request, _ caller) error {
	resp, err := h.b.RollbackService(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func (h *handler) tasks(w http.ResponseWriter, r *http.Request, _ caller) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	v := r.URL.Query()
	list, meta, err := h.b.Tasks(r.Context(), api.TaskFilter{Service: v.Get("service"), Stack: v.Get("stack"), Node: v.Get("node")}, q)
	if err != nil {
		return err
	}
	if list == nil {
		list = []*api.TaskInfo{}
	}
	return okQuery(w, list, meta)
}

// ownNode refuses a worker's certificate a node other than its own: an agent reads
// its own node's tasks and network view only.
func ownNode(c caller, ref, what string) error {
	if !c.local && c.id.Role != ca.RoleManager && ref != c.id.NodeID {
		return fmt.Errorf("%w: node %s may read its own %s only, not those of %s", ca.ErrForbidden, c.id.NodeID, what, ref)
	}
	return nil
}

func (h *handler) nodeTasks(w http.ResponseWriter, r *http.Request, c caller) error {
	ref := r.PathValue("ref")
	if err := ownNode(c, ref, "tasks"); err != nil {
		return err
	}
	q, err := query(r)
	if err != nil {
		return err
	}
	list, meta, err := h.b.NodeTasks(r.Context(), ref, q)
	if err != nil {
		return err
	}
	if list == nil {
		list = []*state.Task{}
	}
	return okQuery(w, list, meta)
}

func (h *handler) nodeNetworkView(w http.ResponseWriter, r *http.Request, c caller) error {
	ref := r.PathValue("ref")
	if err := ownNode(c, ref, "networks"); err != nil {
		return err
	}
	q, err := query(r)
	if err != nil {
		return err
	}
	v, meta, err := h.b.NodeNetworkView(r.Context(), ref, q)
	if err != nil {
		return err
	}
	if len(v.Encoded) == 0 {
		return okQuery(w, v, meta)
	}
	w.Header().Set(api.IndexHeader, strconv.FormatUint(meta.Index, 10))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	// The status is sent; a write error can only be a broken connection.
	_, _ = w.Write(v.Encoded)
	return nil
}

func (h *handler) taskRuntime(w http.ResponseWriter, r *http.Request, c caller) error {
	nodeID := c.id.NodeID
	if c.local {
		nodeID = ""
	}
	rt, err := h.b.TaskRuntime(r.Context(), nodeID, r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, rt)
}

func (h *handler) taskLogs(w http.ResponseWriter, r *http.Request, _ caller) error {
	q := r.URL.Query()
	o := api.LogOptions{Stream: q.Get("stream")}
	var err error
	if v := q.Get("tail"); v != "" && v != "all" {
		if o.Tail, err = strconv.Atoi(v); err != nil || o.Tail < 0 {
			return badRequest("tail=%q: give a number of lines, or all", v)
		}
	}
	for name, dst := range map[string]*bool{"follow": &o.Follow, "timestamps": &o.Timestamps} {
		if v := q.Get(name); v != "" {
			if *dst, err = strconv.ParseBool(v); err != nil {
				return badRequest("%s=%q: give true or false", name, v)
			}
		}
	}
	switch o.Stream {
	case "", "stdout", "stderr":
	default:
		return badRequest("stream=%q: give stdout or stderr", o.Stream)
	}
	sw := &streamWriter{w: w}
	err = h.b.TaskLogs(r.Context(), r.PathValue("id"), o, sw)
	if err != nil && !sw.started {
		return err
	}
	if err != nil {
		// The answer is under way: all that is left is to end it early.
		h.logger.Warn("streaming task logs failed", "task", r.PathValue("id"), "error", err)
	}
	return nil
}

// streamWriter sends its first write's headers as plain text and flushes every
// write, so that followed logs arrive as they are written.
type streamWriter struct {
	w       http.ResponseWriter
	started bool
}

func (s *streamWriter) Write(p []byte) (int, error) {
	if !s.started {
		s.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		s.w.WriteHeader(http.StatusOK)
		s.started = true
	}
	n, err := s.w.Write(p)
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
	return n, err
}

func (h *handler) loadImage(w http.ResponseWriter, r *http.Request, c caller) error {
	var o api.ImageLoadOptions
	var err error
	if o.AllNodes, err = boolParam(r, "all_nodes"); err != nil {
		return err
	}
	if o.AllNodes && !c.local {
		// Managers fan out; what they send a node is for that node alone.
		return badRequest("all_nodes is for the CLI's own node")
	}
	// The archive streams to the runtime: no body limit applies (nor to Git pushes,
	// served by their own handlers).
	resp, err := h.b.LoadImage(r.Context(), r.Body, o)
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func (h *handler) taskStatus(w http.ResponseWriter, r *http.Request, c caller) error {
	var req api.TaskStatusRequest
	if err := decodeInternal(r, &req, maxCommandBody); err != nil {
		return err
	}
	// The node is the certificate's: an agent reports on its own tasks only.
	if err := h.b.ReportTaskStatus(r.Context(), c.id.NodeID, req.Reports); err != nil {
		return err
	}
	return ok(w, nil)
}

func (h *handler) addSource(w http.ResponseWriter, r *http.Request, _ caller) error {
	var req api.SourceAddRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	resp, err := h.b.AddSource(r.Context(), &req)
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func (h *handler) sources(w http.ResponseWriter, r *http.Request, _ caller) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	list, meta, err := h.b.Sources(r.Context(), q)
	if err != nil {
		return err
	}
	if list == nil {
		list = []*api.SourceInfo{}
	}
	return okQuery(w, list, meta)
}

func (h *handler) source(w http.ResponseWriter, r *http.Request, _ caller) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	src, meta, err := h.b.Source(r.Context(), r.PathValue("name"), q)
	if err != nil {
		return err
	}
	return okQuery(w, src, meta)
}

func (h *handler) updateSource(w http.ResponseWriter, r *http.Request, _ caller) error {
	var req api.SourceUpdateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	resp, err := h.b.UpdateSource(r.Context(), r.PathValue("name"), &req)
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func (h *handler) removeSource(w http.ResponseWriter, r *http.Request, _ caller) error {
	prune, err := boolParam(r, "prune")
	if err != nil {
		return err
	}
	resp, err := h.b.RemoveSource(r.Context(), r.PathValue("name"), prune)
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func sourceTokenHandler(rotate bool) func(h *handler, w http.ResponseWriter, r *http.Request, _ caller) error {
	return func(h *handler, w http.ResponseWriter, r *http.Request, _ caller) error {
		resp, err := h.b.SourceToken(r.Context(), r.PathValue("name"), rotate)
		if err != nil {
			return err
		}
		return ok(w, resp)
	}
}
