package server

import (
	"net/http"

	"github.com/berthd/berth/cluster/api"
)

// Handlers of the imperative service verbs (`service create`, `service rm`).

func (h *handler) createService(w http.ResponseWriter, r *http.Request, _ caller) error {
	var req api.ServiceCreateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	resp, err := h.b.CreateService(r.Context(), &req)
	if err != nil {
		return err
	}
	return ok(w, resp)
}

func (h *handler) removeService(w http.ResponseWriter, r *http.Request, _ caller) error {
	resp, err := h.b.RemoveService(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	return ok(w, resp)
}
