package ui

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"

	"github.com/berthd/berth/cluster/api"
)

// liveEvent is what the page's script is told of an event: enough to decide whether
// its page shows the object.
type liveEvent struct {
	Type   string `json:"type"`
	Action string `json:"action"`
	Name   string `json:"name,omitempty"`
}

// events streams the manager's events as server-sent events, from now on. A stream
// ends when its client goes away (the request's context) or a write fails; at most
// MaxStreams run at once.
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	select {
	case h.streams <- struct{}{}:
		defer func() { <-h.streams }()
	default:
		http.Error(w, "Too many live dashboards are open on this manager: close some, or reload later.", http.StatusServiceUnavailable)
		return
	}
	rc := http.NewResponseController(w)
	ctx := r.Context()
	// The first read only finds where the log is (no event comes after the largest
	// index): the page already shows what happened before.
	_, meta, err := h.c.Events(ctx, api.EventFilter{}, api.Query{Index: math.MaxUint64})
	if err != nil {
		http.Error(w, "Live updates are not available: "+err.Error(), h.o.StatusCode(err))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	// The browser reconnects after this long when the stream breaks.
	if _, err := fmt.Fprint(w, "retry: 3000\n\n"); err != nil || rc.Flush() != nil {
		return
	}
	index := meta.Index
	for ctx.Err() == nil {
		evs, meta, err := h.c.Events(ctx, api.EventFilter{}, api.Query{Index: index, Wait: h.o.EventWait})
		if err != nil {
			h.o.Logger.Debug("dashboard event stream ended", "error", err)
			return
		}
		index = max(index, meta.Index)
		if err := writeEvents(w, evs); err != nil || rc.Flush() != nil {
			return
		}
	}
}

// writeEvents writes one message per event, or a comment that keeps the connection
// alive (and finds out whether the client is still there) when there is none.
func writeEvents(w http.ResponseWriter, evs []*api.Event) error {
	if len(evs) == 0 {
		_, err := fmt.Fprint(w, ": idle\n\n")
		return err
	}
	for _, e := range evs {
		b, err := json.Marshal(liveEvent{Type: e.Type, Action: e.Action, Name: e.Name})
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return err
		}
	}
	return nil
}
