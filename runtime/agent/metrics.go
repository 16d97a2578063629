package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count what the agent does on its node. The daemon makes one set and gives
// it to every agent it runs; a nil *Metrics counts nothing.
type Metrics struct {
	phases       *prometheus.CounterVec
	startSeconds prometheus.Histogram
	imageSeconds *prometheus.HistogramVec
	setupSeconds *prometheus.HistogramVec
}

// NewMetrics makes the agent's metrics; register Collectors with the daemon's registry.
func NewMetrics() *Metrics {
	buckets := []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	return &Metrics{
		phases: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_agent_tasks_total",
			Help: "Tasks of this node that started (running), failed to start (rejected) or exited (exited)."}, []string{"phase"}),
		startSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "berth_agent_task_start_seconds",
			Help: "From the agent seeing a task to its container running: image, network, files, start.", Buckets: buckets}),
		imageSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "berth_agent_image_seconds",
			Help: "Making a task's image present (a pull, or a look in the store), by result (ok, error).", Buckets: buckets}, []string{"result"}),
		setupSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "berth_agent_network_setup_seconds",
			Help: "Setting up a task's network namespace (netstack), by result (ok, error).", Buckets: buckets}, []string{"result"}),
	}
}

// Collectors are the metrics to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.phases, m.startSeconds, m.imageSeconds, m.setupSeconds}
}

// entered counts the phases worth counting; a start also times the task's way there.
// A container adopted after a restart did not start here.
func (m *Metrics) entered(from, p phase, seen time.Time) {
	if m == nil || from == phaseAdopted {
		return
	}
	switch p {
	case phaseRunning:
		m.startSeconds.Observe(time.Since(seen).Seconds())
	case phaseRejected, phaseExited:
	default:
		return
	}
	m.phases.WithLabelValues(p.String()).Inc()
}

func (m *Metrics) observeImage(start time.Time, err error) {
	if m != nil {
		m.imageSeconds.WithLabelValues(resultOf(err)).Observe(time.Since(start).Seconds())
	}
}

func (m *Metrics) observeSetup(start time.Time, err error) {
	if m != nil {
		m.setupSeconds.WithLabelValues(resultOf(err)).Observe(time.Since(start).Seconds())
	}
}

func resultOf(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}
