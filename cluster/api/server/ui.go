package server

import "net/http"

func (h *handler) uiToken(w http.ResponseWriter, r *http.Request, _ caller) error {
	resp, err := h.b.UIToken(r.Context())
	if err != nil {
		return err
	}
	return ok(w, resp)
}

// StatusCode is the HTTP status the API answers err with: the web dashboard's pages
// answer a backend's errors with the same statuses.
func StatusCode(err error) int { return toError(err).StatusCode }
