package spec_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/berthd/berth/spec"
)

// generatedStack writes a stack of n services shaped like real ones (deploy section,
// constraints, ports, env, networks, a volume). Every tenth service differs when rev > 0.
func generatedStack(n, rev int) []byte { return generated(n, rev, false) }

// generated writes the stack of generatedStack; with distinct, each service also has a
// hostname of its own, which the loader does not copy unchanged (see spec/shape.go):
// no two services then share a load.
func generated(n, rev int, distinct bool) []byte {
	var b strings.Builder
	b.WriteString("services:\n")
	for i := range n {
		tag := "1.0"
		if rev > 0 && i%10 == 0 {
			tag = fmt.Sprintf("1.%d", rev)
		}
		fmt.Fprintf(&b, `  svc%04d:
    image: registry.example.com/team/app%d:%s
    command: ["/app", "--port", "8080", "--id", "%d"]
    environment:
      LOG_LEVEL: info
      SERVICE_ID: "%d"
    networks: [front, back]
    ports:
      - target: 8080
        published: %d
        mode: ingress
    volumes:
      - data:/var/lib/app
    healthcheck:
      test: ["CMD", "/app", "health"]
      interval: 10s
      retries: 3
    deploy:
      replicas: %d
      placement:
        constraints: ["node.labels.os == linux", "node.role != manager"]
        max_replicas_per_node: 2
      resources:
        limits: {cpus: "0.5", memory: 128M}
        reservations: {cpus: "0.1", memory: 64M}
      update_config: {parallelism: 2, delay: 5s, order: start-first}
      restart_policy: {condition: on-failure, max_attempts: 3}
`, i, i%50, tag, i, i, 20000+i, 1+i%5)
		if distinct {
			fmt.Fprintf(&b, "    hostname: host%04d\n", i)
		}
	}
	b.WriteString("networks:\n  front: {}\n  back: {internal: true}\nvolumes:\n  data: {}\n")
	return []byte(b.String())
}

func loadGenerated(tb testing.TB, content []byte) *spec.Stack {
	tb.Helper()
	return loadGeneratedCached(tb, content, nil)
}

func loadGeneratedCached(tb testing.TB, content []byte, cache *spec.Cache) *spec.Stack {
	tb.Helper()
	st, _, err := spec.Load(context.Background(), spec.LoadOptions{Stack: "big", Files: []spec.File{{Name: "compose.yml", Content: content}}, Cache: cache})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func TestGeneratedStackDiff(t *testing.T) {
	old := loadGenerated(t, generatedStack(100, 0))
	d := spec.Diff(old, loadGenerated(t, generatedStack(100, 1)))
	if len(d.Services) != 10 {
		t.Fatalf("want 10 changed services (every tenth), got %d", len(d.Services))
	}
	for _, c := range d.Services {
		if c.Rollout != spec.RolloutReplace || len(c.Fields) != 1 || c.Fields[0].Path != "image" {
			t.Errorf("%s: want one image change that replaces tasks, got %+v", c.Name, c)
		}
	}
}

// BenchmarkLoad1000Services: parse, merge, interpolate, validate and canonicalize.
func BenchmarkLoad1000Services(b *testing.B) {
	content := generatedStack(1000, 0)
	b.ReportAllocs()
	for b.Loop() {
		loadGenerated(b, content)
	}
}

// BenchmarkLoad1000DistinctServices is the cold load of services that share no load:
// the loader runs once per service.
func BenchmarkLoad1000DistinctServices(b *testing.B) {
	content := generated(1000, 0, true)
	b.ReportAllocs()
	for b.Loop() {
		loadGenerated(b, content)
	}
}

// BenchmarkPlan1000Services is the plan of a new revision against the applied one, as the
// applier makes it: the applied revision's stack is in memory and its loader results are
// in the cache; load and validate the new files (100 of 1,000 services changed), then diff.
// Each iteration starts from a cache that holds only the applied revision.
func BenchmarkPlan1000Services(b *testing.B) {
	benchmarkPlan(b, generatedStack(1000, 0), generatedStack(1000, 1))
}

// BenchmarkPlan1000DistinctServices is the same plan (an image bump on every tenth
// service) of services that share no load.
func BenchmarkPlan1000DistinctServices(b *testing.B) {
	benchmarkPlan(b, generated(1000, 0, true), generated(1000, 1, true))
}

func benchmarkPlan(b *testing.B, oldContent, content []byte) {
	old := loadGenerated(b, oldContent)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		cache := spec.NewCache()
		loadGeneratedCached(b, oldContent, cache)
		b.StartTimer()
		if d := spec.Diff(old, loadGeneratedCached(b, content, cache)); len(d.Services) != 100 {
			b.Fatalf("want 100 changed services, got %d", len(d.Services))
		}
	}
}

// BenchmarkLoadUnchanged1000Services loads a revision whose every service is cached.
func BenchmarkLoadUnchanged1000Services(b *testing.B) {
	content := generatedStack(1000, 0)
	cache := spec.NewCache()
	loadGeneratedCached(b, content, cache)
	b.ReportAllocs()
	for b.Loop() {
		loadGeneratedCached(b, content, cache)
	}
}

// BenchmarkDiff1000Services isolates the diff itself.
func BenchmarkDiff1000Services(b *testing.B) {
	old, new := loadGenerated(b, generatedStack(1000, 0)), loadGenerated(b, generatedStack(1000, 1))
	b.ReportAllocs()
	for b.Loop() {
		spec.Diff(old, new)
	}
}

// BenchmarkValidate1000Services is the check a manager runs on every stack it is sent
// (spec.Validate), on a stack already loaded.
func BenchmarkValidate1000Services(b *testing.B) {
	st := loadGenerated(b, generatedStack(1000, 0))
	b.ReportAllocs()
	for b.Loop() {
		if err := spec.Validate(st); err != nil {
			b.Fatal(err)
		}
	}
}
