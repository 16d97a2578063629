package server

import (
	"bytes"
	"io"
	"net/http"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// Handlers of the node, the cluster and its members: decode, call the backend, encode.

func (h *handler) info(w http.ResponseWriter, r *http.Request, _ caller) error {
	info, err := h.b.Info(r.Context())
	if err != nil {
		return err
	}
	return ok(w, info)
}

// backup is written whole before it is sent, so that a failure is an error answer
// rather than a cut archive.
func (h *handler) backup(w http.ResponseWriter, r *http.Request, _ caller) error {
	var buf bytes.Buffer
	if err := h.b.Backup(r.Context(), &buf); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/gzip")
	_, err := buf.WriteTo(w)
	return err
}

func (h *handler) metrics(w http.ResponseWriter, r *http.Request, _ caller) error {
	h.b.MetricsHandler().ServeHTTP(w, r)
	return nil
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
		role := model.NodeRole(r.PathValue("role"))
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
		nodes = []*model.Node{}
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

func setRoleHandler(role model.NodeRole) func(*handler, http.ResponseWriter, *http.Request, caller) error {
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
	out := make([]*model.Secret, 0, len(list))
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
	out := make([]*model.Config, 0, len(list))
	for _, c := range list {
		cp := c.Copy()
		cp.Data = nil
		out = append(out, cp)
	}
	return okQuery(w, out, meta)
}

func (h *handler) secret(w http.ResponseWriter, r *http.Request, _ caller) error {
	s, err := h.b.Secret(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	// Whatever the backend returned: an answer of the API never carries secret data.
	return ok(w, s.Redacted())
}

func (h *handler) removeSecret(w http.ResponseWriter, r *http.Request, _ caller) error {
	resp, err := h.b.RemoveSecret(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func (h *handler) config(w http.ResponseWriter, r *http.Request, _ caller) error {
	cf, err := h.b.Config(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	return ok(w, cf)
}

func (h *handler) removeConfig(w http.ResponseWriter, r *http.Request, _ caller) error {
	resp, err := h.b.RemoveConfig(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	return ok(w, resp)
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
	var req api.HeartbeatRequest
	if err := decodeInternal(r, &req, spec.MaxRequestBytes); err != nil {
		return err
	}
	resp, err := h.b.Heartbeat(r.Context(), c.id, req)
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

func (h *handler) issueClientCert(w http.ResponseWriter, r *http.Request, _ caller) error {
	var req api.ClientCertRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	resp, err := h.b.IssueClientCert(r.Context(), &req)
	if err != nil {
		return err
	}
	return ok(w, resp)
}
