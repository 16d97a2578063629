package server

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// Handlers of stacks, services, tasks, images and sources.

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

func (h *handler) events(w http.ResponseWriter, r *http.Request, _ caller) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	f, err := eventFilter(r.URL.Query())
	if err != nil {
		return err
	}
	list, meta, err := h.b.Events(r.Context(), f, q)
	if err != nil {
		return err
	}
	if list == nil {
		list = []*api.Event{}
	}
	return okQuery(w, list, meta)
}

// eventFilter reads since and until (Unix nanoseconds) and type (a comma list).
func eventFilter(v url.Values) (api.EventFilter, error) {
	var f api.EventFilter
	for _, p := range []struct {
		key string
		to  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := v.Get(p.key); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return f, api.BadRequest(fmt.Errorf("%s=%q: write Unix nanoseconds", p.key, s))
			}
			*p.to = time.Unix(0, n)
		}
	}
	for _, t := range strings.Split(v.Get("type"), ",") {
		if t == "" {
			continue
		}
		if !slices.Contains(api.EventTypes, t) {
			return f, api.BadRequest(fmt.Errorf("no event type %q: the types are %s", t, strings.Join(api.EventTypes, ", ")))
		}
		f.Types = append(f.Types, t)
	}
	return f, nil
}

// ownNode refuses a worker's certificate a node other than its own: an agent reads
// its own node's tasks and network view only.
func ownNode(c caller, ref, what string) error {
	if !c.operator() && c.id.Role != ca.RoleManager && ref != c.id.NodeID {
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
		list = []*model.Task{}
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
	if c.operator() {
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
	for name, dst := range map[string]*time.Time{"since": &o.Since, "until": &o.Until} {
		if v := q.Get(name); v != "" {
			if *dst, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return badRequest("%s=%q: give an RFC 3339 time", name, v)
			}
		}
	}
	if !o.Since.IsZero() && !o.Until.IsZero() && o.Until.Before(o.Since) {
		return badRequest("until (%s) is before since (%s): no line can be between them", o.Until.Format(time.RFC3339), o.Since.Format(time.RFC3339))
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
	if o.AllNodes && !c.operator() {
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
