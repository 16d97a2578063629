package applier

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berthd/berth/cluster/model"
)

// Metrics count what the GitOps side does on a manager: syncs, pushes, webhooks. A
// daemon makes one set and hands it to every applier and handler it starts, so the
// counts survive a manager stepping down and up again. A nil *Metrics counts nothing.
type Metrics struct {
	syncs       *prometheus.CounterVec
	syncSeconds *prometheus.HistogramVec
	pushes      *prometheus.CounterVec
	webhooks    *prometheus.CounterVec
	notices     *prometheus.CounterVec
}

// NewMetrics makes the counters; register Collectors with the daemon's registry.
func NewMetrics() *Metrics {
	return &Metrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_source_syncs_total",
			Help: "Syncs this manager made as leader, by source and result (applied, unchanged, rejected, error)."}, []string{"source", "result"}),
		syncSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "berth_source_sync_duration_seconds",
			Help:    "How long a sync took, fetch to record, by source.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}}, []string{"source"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_source_pushes_total",
			Help: "git pushes this manager received, by push source and result (accepted, rejected)."}, []string{"source", "result"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_webhook_requests_total",
			Help: "Webhook deliveries this manager answered, by HTTP status (202 accepted, 401 bad signature...)."}, []string{"code"}),
		notices: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_notifications_total",
			Help: "Notifications and commit statuses this manager sent as leader, by kind (generic, slack, github, gitlab, gitea) and result (sent, failed, overflow)."}, []string{"kind", "result"}),
	}
}

// Collectors are the metrics to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.syncs, m.syncSeconds, m.pushes, m.webhooks, m.notices}
}

// CountWebhooks wraps the webhook receiver so that its answers are counted.
func (m *Metrics) CountWebhooks(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return promhttp.InstrumentHandlerCounter(m.webhooks, next)
}

func (m *Metrics) observeSync(source string, result model.SyncResult, took time.Duration) {
	if m == nil || result == "" {
		return
	}
	m.syncs.WithLabelValues(source, string(result)).Inc()
	m.syncSeconds.WithLabelValues(source).Observe(took.Seconds())
}

func (m *Metrics) observePush(source string, err error) {
	if m == nil {
		return
	}
	result := "accepted"
	if err != nil {
		result = "rejected"
	}
	m.pushes.WithLabelValues(source, result).Inc()
}

func (m *Metrics) countNotification(kind, result string) {
	if m == nil {
		return
	}
	m.notices.WithLabelValues(kind, result).Inc()
}
