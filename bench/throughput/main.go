// Command throughput measures write throughput on three real managers over the real
// mutual-TLS raft transport: concurrent writers send node label updates through a
// manager's socket; raft batches the concurrent commands into shared log appends and
// replication rounds. Writes through a follower are also forwarded to the leader over
// mutual TLS.
//
//	go run ./bench/throughput [-writes 2000] [-concurrency 1,16,64]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/internal/clustertest"
)

func main() {
	writes := flag.Int("writes", 2000, "Writes per measurement")
	conc := flag.String("concurrency", "1,16,64", "Concurrent writers, comma-separated")
	bin := flag.String("berth", "", "berth binary built with -tags simagent (default: build one)")
	flag.Parse()
	var levels []int
	for _, s := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "throughput: bad concurrency %q\n", s)
			os.Exit(2)
		}
		levels = append(levels, n)
	}
	if err := run(*writes, levels, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "throughput:", err)
		os.Exit(2)
	}
}

func run(writes int, levels []int, bin string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	root, err := os.MkdirTemp("", "berth-bench-throughput-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	if bin == "" {
		if bin, err = clustertest.Build(ctx, root); err != nil {
			return err
		}
	}
	ds, err := clustertest.StartManagers(ctx, bin, root, 3, "--log-level", "warn", "--sim-agent")
	if err != nil {
		return err
	}
	defer func() {
		for _, d := range ds {
			_ = d.Kill()
		}
	}()
	leader, err := clustertest.Leader(ctx, ds, ds[0])
	if err != nil {
		return err
	}
	var follower *clustertest.Daemon
	for _, d := range ds {
		if d != leader {
			follower = d
			break
		}
	}
	fmt.Printf("3 managers on 127.0.0.1 (raft over mutual TLS 1.3, log and snapshots sealed with AES-256-GCM, fsync per append); %d writes each\n", writes)
	fmt.Printf("%-22s %12s %10s %10s %10s\n", "through", "concurrency", "writes/s", "p50", "p99")
	for _, target := range []*clustertest.Daemon{leader, follower} {
		via := "leader socket"
		if target == follower {
			via = "follower (forwarded)"
		}
		for _, c := range levels {
			rate, p50, p99, err := measure(ctx, target, writes, c)
			if err != nil {
				return err
			}
			fmt.Printf("%-22s %12d %10.0f %10s %10s\n", via, c, rate, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
		}
	}
	return nil
}

func measure(ctx context.Context, d *clustertest.Daemon, writes, concurrency int) (float64, time.Duration, time.Duration, error) {
	c := d.Client()
	var (
		next    atomic.Int64
		mu      sync.Mutex
		lat     []time.Duration
		firstEr error
		wg      sync.WaitGroup
	)
	start := time.Now()
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(writes) {
					return
				}
				t0 := time.Now()
				_, err := c.UpdateNode(ctx, d.Name, api.NodeUpdateRequest{LabelsAdd: map[string]string{
					fmt.Sprintf("w%d", w): strconv.FormatInt(i, 10)}})
				el := time.Since(t0)
				mu.Lock()
				if err != nil && firstEr == nil {
					firstEr = err
				}
				lat = append(lat, el)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	total := time.Since(start)
	if firstEr != nil {
		return 0, 0, 0, firstEr
	}
	slices.Sort(lat)
	return float64(writes) / total.Seconds(), lat[len(lat)/2], lat[len(lat)*99/100], nil
}
