// Command netconv measures issue 16's networking across nodes on a 3-node lab
// (internal/netlab: 1 manager and 2 workers, real daemons, containerd, network
// namespaces, kernel VXLAN and nftables), with a client task pinned to the manager:
//
//   - task stops -> gone: SIGKILL of a web task's container on a worker (through
//     containerd) until the client's resolver (127.0.0.11) no longer lists its
//     address under tasks.web, and until the VIP's backend map in the client's
//     namespace no longer holds it;
//   - task starts -> reachable: from containerd's start event of the replacement
//     until its address is in tasks.web, and until a TCP connection to it on 8080
//     from the client's namespace succeeds;
//   - routing mesh: requests/s (one connection per request, HTTP/1.0) from the
//     host leg to the published port of a node that runs no task of a 1-replica
//     service, against the same requests to the node that runs it and to the task's
//     address from the client task.
//
// Each task is killed only once it has run for the orchestrator's BackoffReset, so
// that the kills count as no crash loop (whose back-off would double every round).
//
// It needs root, containerd, nft and nsenter; the lab is torn down at the end, on
// an error and on Ctrl-C (-logs keeps the daemons' logs).
//
//	go build -o /tmp/netconv ./bench/netconv
//	flock /tmp/berth-integ.lock /tmp/netconv [-rounds 20] [-seconds 5] [-concurrency 8] [-berth BIN] [-logs DIR]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

type options struct {
	rounds, seconds, concurrency int
	bin, containerd, dir, logs   string
}

// The main goroutine keeps the main thread, so that the daemons, which main starts,
// are forked from it. clustertest starts them with Pdeathsig, which Linux ties to
// the thread that forked, not the process; inNetNS ends every thread it uses, and
// one that had forked a daemon would take the daemon with it. Go never ends the
// main thread.
func init() { runtime.LockOSThread() }

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 20, "kills of a web task (each measures gone and reachable)")
	flag.IntVar(&o.seconds, "seconds", 5, "length of each routing-mesh measurement")
	flag.IntVar(&o.concurrency, "concurrency", 8, "concurrent connections of the concurrent routing-mesh measurements")
	flag.StringVar(&o.bin, "berth", "", "berth binary (default: build ./cmd/berth)")
	flag.StringVar(&o.containerd, "containerd", "/run/containerd/containerd.sock", "containerd's socket")
	flag.StringVar(&o.dir, "dir", "", "where the lab's directory goes (default: the temporary directory)")
	flag.StringVar(&o.logs, "logs", "", "copy the daemons' logs into this directory before the teardown")
	flag.Parse()
	if o.rounds < 1 || o.seconds < 1 || o.concurrency < 1 {
		fmt.Fprintln(os.Stderr, "netconv: -rounds, -seconds and -concurrency must be at least 1")
		os.Exit(2)
	}
	// Ctrl-C cancels the measurement; the lab's teardown runs on its own context.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	interrupted := ctx.Err() != nil
	stop()
	switch {
	case interrupted:
		fmt.Fprintln(os.Stderr, "netconv: interrupted:", err)
		os.Exit(130)
	case err != nil:
		fmt.Fprintln(os.Stderr, "netconv:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) (err error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Minute)
	defer cancel()
	b, err := startBench(ctx, o)
	if err != nil {
		return err
	}
	defer func() {
		if o.logs != "" {
			err = errors.Join(err, b.copyLogs(o.logs))
		}
		if cerr := b.lab.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("tear the lab down: %w", cerr))
		}
	}()
	fmt.Printf("lab %s on %s: 3 nodes (1 manager, 2 workers), client task %s on %s, VIP of web %s\n",
		b.lab.ID(), b.lab.Subnet(), b.client.id, b.lab.Node(0).Name, b.vip)
	if err := b.convergence(ctx, o.rounds); err != nil {
		return fmt.Errorf("%w\n%s", err, b.logTails())
	}
	if err := b.mesh(ctx, time.Duration(o.seconds)*time.Second, o.concurrency); err != nil {
		return fmt.Errorf("%w\n%s", err, b.logTails())
	}
	return nil
}
