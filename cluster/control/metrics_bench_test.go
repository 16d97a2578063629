package control_test

import (
	"io"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/internal/statetest"
)

// BenchmarkMetricsScrape1000Services is one GET /metrics of a manager whose cluster runs
// 1,000 services of 3 tasks on 20 nodes, text format included (issue 20: <= 100 ms).
func BenchmarkMetricsScrape1000Services(b *testing.B) {
	st := statetest.Fleet(b, 20, 1000)
	reg := prometheus.NewRegistry()
	reg.MustRegister(control.New(control.Config{Store: statetest.FixedStore{St: st}}).Collector())
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if rec.Code != 200 {
			b.Fatalf("scrape: %d %s", rec.Code, rec.Body)
		}
		if _, err := io.Copy(io.Discard, rec.Body); err != nil {
			b.Fatal(err)
		}
	}
}
