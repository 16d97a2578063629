package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// MaxBodySize is the largest request body the handler reads. Push payloads of the forges
// stay far below it; the limit bounds what an unauthenticated caller can make a manager read.
const MaxBodySize = 1 << 20

// PathPrefix is the path under which the handler serves; the source's name follows it.
const PathPrefix = "/v1/hooks/"

// ErrUnknownSource is wrapped by Sources.WebhookTarget when no source of that name has a
// webhook secret.
var ErrUnknownSource = errors.New("unknown webhook source")

// Sources is what the handler needs from the cluster.
type Sources interface {
	// WebhookTarget returns the source's webhook secret and tracked branch;
	// an error wrapping ErrUnknownSource when there is no such source or it has no webhook secret.
	WebhookTarget(ctx context.Context, name string) (secret []byte, branch string, err error)
	// RequestSync asks for an immediate sync of the source (revision may be "").
	RequestSync(ctx context.Context, name, revision string) error
}

// Option configures the handler.
type Option func(*handler)

// WithLogger sets the logger (default: discard). Secrets and signatures are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(h *handler) { h.log = l }
}

// NewHandler returns the handler of POST /v1/hooks/NAME. It authenticates the request with
// the webhook secret of source NAME and requests a sync when the request reports a push
// to the branch the source tracks; everything else is acknowledged and ignored.
//
// A delivery this handler accepted before (same source, sender and delivery id, within
// an hour and the last 10,000) is answered 200 "replay" and does nothing. Requests for a
// source that arrive while its sync request is being made share one queued request.
func NewHandler(src Sources, opts ...Option) http.Handler {
	h := &handler{src: src, log: slog.New(slog.DiscardHandler), now: time.Now,
		seen: newDeliveries(replayIDs, replayTTL), requests: newCoalescer()}
	for _, opt := range opts {
		opt(h)
	}
	return h
}

type handler struct {
	src      Sources
	log      *slog.Logger
	now      func() time.Time
	seen     *deliveries
	requests *coalescer
}

// response is the JSON body of every answer.
type response struct {
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
	Revision string `json:"revision,omitempty"`
	Error    string `json:"error,omitempty"`
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed: send POST", r.Method))
		return
	}
	name, ok := sourceName(r.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, "no webhook here: send POST "+PathPrefix+"NAME, NAME being the source's name")
		return
	}
	if r.ContentLength > MaxBodySize {
		writeError(w, http.StatusRequestEntityTooLarge, tooLarge)
		return
	}

	ctx := r.Context()
	log := h.log.With("source", name)
	secret, tracked, err := h.src.WebhookTarget(ctx, name)
	switch {
	case errors.Is(err, ErrUnknownSource):
		log.DebugContext(ctx, "webhook for unknown source")
		writeError(w, http.StatusNotFound, fmt.Sprintf("no source %q with a webhook secret: "+
			"check the name in the webhook URL and that the source has a webhook secret", name))
		return
	case err != nil:
		// The caller is not authenticated yet: the cause goes to the log, not to the answer.
		log.InfoContext(ctx, "webhook source lookup failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "cannot look up the source now; retry later")
		return
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodySize))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("read body: %v", err))
		return
	}

	ev, err := Parse(r.Header, body, secret)
	if err != nil {
		log.InfoContext(ctx, "webhook rejected", "err", err)
		status := http.StatusUnauthorized
		if errors.Is(err, ErrBadPayload) {
			status = http.StatusBadRequest
		}
		writeError(w, status, err.Error())
		return
	}
	log = log.With("provider", ev.Provider, "event", ev.Type, "ref", ev.Ref, "delivery", ev.Delivery)

	// Only an authenticated delivery is remembered: an unsigned copy must not make the
	// genuine one look like a replay.
	key := keyOf(name, ev.Provider, ev.Delivery)
	if ev.Delivery != "" {
		if first, replay := h.seen.seen(key, h.now()); replay {
			log.InfoContext(ctx, "webhook replay ignored", "first", first)
			writeJSON(w, http.StatusOK, response{Status: "replay", Reason: fmt.Sprintf(
				"delivery %.100q was received at %s; a replay requests no sync", ev.Delivery, first.UTC().Format(time.RFC3339))})
			return
		}
	}

	if ev.Kind == KindPing {
		log.InfoContext(ctx, "webhook ping")
		writeJSON(w, http.StatusOK, response{Status: "pong"})
		return
	}
	revision, reason, sync := decide(ev, tracked)
	if !sync {
		log.DebugContext(ctx, "webhook ignored", "reason", reason)
		writeJSON(w, http.StatusAccepted, response{Status: "ignored", Reason: reason})
		return
	}
	joined, err := h.requests.do(ctx, log, name, revision, h.src.RequestSync)
	if err != nil {
		// The sender's retry of this delivery must count.
		h.seen.forget(key)
		log.InfoContext(ctx, "webhook sync request failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("request sync of source %q: %v", name, err))
		return
	}
	resp := response{Status: "sync requested", Revision: revision}
	if joined {
		resp.Reason = "joined the sync request queued for this source"
	}
	log.InfoContext(ctx, "webhook sync requested", "revision", revision, "coalesced", joined)
	writeJSON(w, http.StatusAccepted, resp)
}

const tooLarge = "body larger than 1 MiB: a push notification is much smaller; check the webhook URL"

// sourceName returns NAME of a path PathPrefix+NAME; NAME is one non-empty path element.
func sourceName(path string) (string, bool) {
	name, ok := strings.CutPrefix(path, PathPrefix)
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	return name, true
}

// decide returns whether an authenticated event asks for a sync of a source tracking
// branch tracked, the revision to ask for, or why the event is ignored.
func decide(ev *Event, tracked string) (revision, reason string, sync bool) {
	switch {
	case ev.Kind != KindPush:
		return "", fmt.Sprintf("%s event %q is not a push", ev.Provider, ev.Type), false
	case ev.Deleted:
		return "", fmt.Sprintf("the push deleted %s", ev.Ref), false
	case ev.Ref == "":
		// A generic request without ref: sync whatever the source tracks.
		return ev.Revision, "", true
	case ev.Branch() == "":
		return "", fmt.Sprintf("%s is not a branch", ev.Ref), false
	case tracked == "":
		// The source follows the remote's default branch, which the push does not name:
		// sync, but let the source resolve its own revision rather than take this one.
		return "", "", true
	case ev.Branch() != tracked:
		return "", fmt.Sprintf("push to branch %q; the source tracks branch %q", ev.Branch(), tracked), false
	}
	return ev.Revision, "", true
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, response{Status: "error", Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v response) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	// The status line is sent; a failed write means the caller has gone and there is no one to tell.
	_ = json.NewEncoder(w).Encode(v)
}
