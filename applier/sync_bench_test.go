package applier

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// bigStack is one stack of n services shaped like spec's benchmark stack.
func bigStack(n int) string {
	var b strings.Builder
	b.WriteString("services:\n")
	for i := range n {
		fmt.Fprintf(&b, `  svc%04d:
    image: registry.example.com/team/app%d:1.0
    command: ["/app", "--id", "%d"]
    environment: {LOG_LEVEL: info}
    networks: [front, back]
    ports: [{target: 8080, published: %d}]
    volumes: ["data:/var/lib/app"]
    deploy:
      replicas: %d
      placement: {constraints: ["node.labels.os == linux", "node.role != manager"]}
      update_config: {parallelism: 2, order: start-first}
`, i, i%50, i, 20000+i, 1+i%5)
	}
	b.WriteString("networks:\n  front: {}\n  back: {internal: true}\nvolumes:\n  data: {}\n")
	return b.String()
}

// BenchmarkSyncCommands1000Services is the CPU a sync spends on a revision before
// planning: load and check a 1,000-service stack, then make its raft command
// (revisionCommands, which hashes and, for a client's stack, checks it again).
// "uncached" loads as a sync does; "cached" keeps the loader's work of the same
// revision, as `stack deploy --watch` does, so that the checks weigh more.
func BenchmarkSyncCommands1000Services(b *testing.B) {
	fsys := fstest.MapFS{"big/compose.yaml": {Data: []byte(bigStack(1000))}}
	src := &model.Source{Name: "src"}
	st, err := state.New()
	if err != nil {
		b.Fatal(err)
	}
	for _, cached := range []bool{false, true} {
		name := map[bool]string{false: "uncached", true: "cached"}[cached]
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			var opts []LoadOption
			if cached {
				opts = append(opts, WithCache(spec.NewCache()))
				if _, err := LoadStacks(ctx, fsys, ".", nil, opts...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				loaded, err := LoadStacks(ctx, fsys, ".", nil, opts...)
				if err != nil {
					b.Fatal(err)
				}
				plan, err := control.PlanSource(st.ReadTxn(), src, loaded.Checked(), loaded.DependsOn, model.NewID)
				if err != nil || len(plan.Diffs()) != 1 {
					b.Fatal(err)
				}
			}
		})
	}
}
