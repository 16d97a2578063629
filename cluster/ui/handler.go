package ui

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
)

// Prefix is where the dashboard is served.
const Prefix = "/ui/"

// Cluster is what the dashboard reads: the manager's API backend (daemon.Node) or a
// control.Control. Every read is non-blocking (api.Query{}) except the events watch.
type Cluster interface {
	Sources(ctx context.Context, q api.Query) ([]*api.SourceInfo, api.QueryMeta, error)
	Source(ctx context.Context, name string, q api.Query) (*api.SourceInfo, api.QueryMeta, error)
	// Plan previews a source's sync: the data of `berth diff --source`.
	Plan(ctx context.Context, req *api.PlanRequest) (*api.PlanResponse, error)
	Stacks(ctx context.Context, q api.Query) ([]*api.StackSummary, api.QueryMeta, error)
	Services(ctx context.Context, f api.ServiceFilter, q api.Query) ([]*api.ServiceStatus, api.QueryMeta, error)
	Service(ctx context.Context, ref string, q api.Query) (*api.ServiceStatus, api.QueryMeta, error)
	Tasks(ctx context.Context, f api.TaskFilter, q api.Query) ([]*api.TaskInfo, api.QueryMeta, error)
	Nodes(ctx context.Context, q api.Query) ([]*model.Node, api.QueryMeta, error)
	Node(ctx context.Context, ref string, q api.Query) (*model.Node, api.QueryMeta, error)
	NodeNetworkView(ctx context.Context, ref string, q api.Query) (*api.NetworkView, api.QueryMeta, error)
	Events(ctx context.Context, f api.EventFilter, q api.Query) ([]*api.Event, api.QueryMeta, error)
}

// Options configure the dashboard.
type Options struct {
	// Sessions are the manager's login tokens and sessions.
	Sessions *Sessions
	// ClusterID returns the cluster's ID, which an admin client certificate must
	// name.
	ClusterID func() string
	// StatusCode maps a Cluster error to the HTTP status of its page (nil: 500).
	StatusCode func(error) int
	Logger     *slog.Logger
	// Now is the clock of the pages' "ago" (nil: time.Now).
	Now func() time.Time
	// MaxStreams bounds the live-update streams served at once (0: 64).
	MaxStreams int
	// EventWait is how long one events watch waits before the stream sends a
	// keep-alive (0: 25s).
	EventWait time.Duration
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// handler serves the dashboard.
type handler struct {
	c       Cluster
	o       Options
	pages   map[string]*template.Template
	mux     *http.ServeMux
	streams chan struct{}
}

// New returns the dashboard's handler, to be served at Prefix.
func New(c Cluster, o Options) (http.Handler, error) {
	if o.Sessions == nil || o.ClusterID == nil {
		return nil, errors.New("ui: Options.Sessions and Options.ClusterID are required")
	}
	if o.StatusCode == nil {
		o.StatusCode = func(error) int { return http.StatusInternalServerError }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = 64
	}
	if o.EventWait <= 0 {
		o.EventWait = 25 * time.Second
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	h := &handler{c: c, o: o, pages: pages, mux: http.NewServeMux(), streams: make(chan struct{}, o.MaxStreams)}
	if err := h.route(); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *handler) route() error {
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return err
	}
	h.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	h.mux.HandleFunc("GET /ui/login", h.login)
	h.mux.HandleFunc("GET /ui/{$}", h.page("overview", h.overview))
	h.mux.HandleFunc("GET /ui/sources/{name}", h.page("source", h.source))
	h.mux.HandleFunc("GET /ui/stacks/{name}", h.page("stack", h.stack))
	h.mux.HandleFunc("GET /ui/services/{name}", h.page("service", h.service))
	h.mux.HandleFunc("GET /ui/nodes", h.page("nodes", h.nodes))
	h.mux.HandleFunc("GET /ui/nodes/{name}", h.page("node", h.node))
	h.mux.HandleFunc("GET /ui/events", h.authorized(h.events))
	h.mux.HandleFunc("/ui/", h.authorized(h.noPage))
	return nil
}

// noPage answers what no route serves: another method than GET, or another path.
func (h *handler) noPage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.fail(w, r, http.StatusMethodNotAllowed, "The dashboard is read-only: it answers GET only. Change the cluster with the berth CLI or through Git.")
		return
	}
	h.fail(w, r, http.StatusNotFound, "There is no dashboard page at "+r.URL.Path+": start from the overview.")
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	// Nothing is loaded from elsewhere, and nothing may frame the pages.
	hdr.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	h.mux.ServeHTTP(w, r)
}

// view is what every page template gets.
type view struct {
	Title string
	// Section is the navigation entry the page belongs to.
	Section string
	Now     time.Time
	Data    any
}

// loader reads a page's data; title names the page.
type loader func(r *http.Request) (title string, data any, err error)

// page serves an authorized page: its data, rendered whole before anything is sent
// so that an error is a page of its own rather than a cut one.
func (h *handler) page(name string, load loader) http.HandlerFunc {
	return h.authorized(func(w http.ResponseWriter, r *http.Request) {
		title, data, err := load(r)
		if err != nil {
			status := h.o.StatusCode(err)
			if nf := (*notFoundError)(nil); errors.As(err, &nf) {
				status = http.StatusNotFound
			}
			h.fail(w, r, status, err.Error())
			return
		}
		h.render(w, r, http.StatusOK, name, view{Title: title, Section: name, Now: h.o.Now(), Data: data})
	})
}

func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		h.o.Logger.Error("dashboard page failed to render", "path", r.URL.Path, "error", err)
		http.Error(w, "The page failed to render (a bug in berth, please report it): "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// fail renders the error page.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, status int, message string) {
	h.render(w, r, status, "error", view{Title: http.StatusText(status), Now: h.o.Now(), Data: message})
}
