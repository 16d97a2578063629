package applier_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthd/berth/applier"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/internal/memcluster"
)

// The leader's syncs are counted by source and result, and timed.
func TestSyncsAreCounted(t *testing.T) {
	metrics := applier.NewMetrics()
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.Collectors()...)
	c, err := memcluster.New(memcluster.Options{Dir: t.TempDir(), Applier: &applier.Config{Dir: t.TempDir(), Debounce: 50 * time.Millisecond, Metrics: metrics}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	dir := t.TempDir()
	write := func(content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, "web"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "web", "compose.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(compose("nginx:1"))
	ctx := context.Background()
	m, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Control.AddSource(ctx, &api.SourceAddRequest{Source: &model.Source{Name: "local", Kind: model.SourceDir, URL: dir, Prune: true}}); err != nil {
		t.Fatal(err)
	}
	counted := func(result string, want float64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, timed := gathered(t, reg, result)
			if got >= want && timed >= want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("syncs with result %s: %v counted, %v timed; want %v", result, got, timed, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	counted("applied", 1)
	write("services:\n  app:\n    image: nginx:2\n    deploy: {mode: globl}\n")
	counted("rejected", 1)
}

// gathered is the count of syncs of source local with result, and the count of timed
// syncs of that source.
func gathered(t *testing.T, reg *prometheus.Registry, result string) (count, timed float64) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch {
			case f.GetName() == "berth_source_syncs_total" && labels["source"] == "local" && labels["result"] == result:
				count = m.GetCounter().GetValue()
			case f.GetName() == "berth_source_sync_duration_seconds" && labels["source"] == "local":
				timed = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return count, timed
}
