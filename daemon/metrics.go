package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newRegistry gathers the node's metrics: the Go runtime's, the process's, the
// running manager's (none on a worker), the control plane's timings and extra.
func newRegistry(n *Node, extra []prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), managerMetrics{n},
		n.timings.apply, n.timings.passes, n.timings.passSeconds)
	for _, c := range extra {
		reg.MustRegister(c)
	}
	return reg
}

// MetricsHandler serves the node's metrics in Prometheus' text format.
func (n *Node) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(n.metrics, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(n.logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// serveMetrics serves GET /metrics on addr in plain HTTP until stop; failed says why
// the listener stopped on its own.
func (n *Node) serveMetrics(addr string) (stop func(), failed <-chan error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("the metrics address %s cannot be opened (--metrics-addr): %w", addr, err)
	}
	errs := make(chan error, 1)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", n.MetricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(n.logger.Handler(), slog.LevelDebug)}
	go func() {
		if err := srv.Serve(ln); err != http.ErrServerClosed {
			errs <- fmt.Errorf("serve metrics on %s: %w", addr, err)
		}
	}()
	n.logger.Info("serving metrics", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, errs, nil
}

// managerMetrics are the running manager's, whichever it is now: a node becomes and
// stops being a manager while it runs.
type managerMetrics struct{ n *Node }

// Describe sends nothing: the metrics come and go with the manager (an unchecked
// collector).
func (managerMetrics) Describe(chan<- *prometheus.Desc) {}

func (m managerMetrics) Collect(ch chan<- prometheus.Metric) {
	if mgr, err := m.n.activeManager(); err == nil {
		mgr.ctl.Collector().Collect(ch)
	}
}

// controlTimings time the control plane's work on whichever manager this node is:
// raft writes, and the reconciler's passes on the leader.
type controlTimings struct {
	apply       prometheus.Histogram
	passes      *prometheus.CounterVec
	passSeconds prometheus.Histogram
}

func newControlTimings() controlTimings {
	buckets := []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	return controlTimings{
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "berth_raft_apply_duration_seconds",
			Help: "How long a write this manager made took to be committed and applied, forwarding included.", Buckets: buckets}),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_reconciler_passes_total",
			Help: "The leader's reconciler passes, by result (ok, error)."}, []string{"result"}),
		passSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "berth_reconciler_pass_duration_seconds",
			Help: "How long a reconciler pass took, plans committed included.", Buckets: buckets}),
	}
}

func (t controlTimings) observeApply(took time.Duration) { t.apply.Observe(took.Seconds()) }

func (t controlTimings) observePass(took time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	t.passes.WithLabelValues(result).Inc()
	t.passSeconds.Observe(took.Seconds())
}
