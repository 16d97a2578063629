// Command converge measures berth's data plane on one real daemon whose agent runs
// the tasks on containerd (in a containerd namespace of its own):
//
//   - converge latency: from the start of `berth stack deploy` of a stack of N
//     replicas of `sleep` until the API reports all N running, against a baseline
//     measured in the same run: the same N containers started in parallel with a
//     bare containerd client (ctrtest.RunParallel). Runs interleave them. Measured
//     in pairs of the same containers: berth's default (containerd's seccomp
//     profile, as Docker's) against the baseline with that profile, and the stack
//     with security_opt seccomp=unconfined against the baseline without a filter.
//     The baseline's containers are berth's but for their network (berthSetup:
//     hosts and resolv.conf files, the cgroup mount, the log driver); the same runs
//     also measure bare ones (loopback only, no files, no logs) for comparison.
//   - restart latency: SIGKILL of one task of a service (restart_policy any, delay 0)
//     through containerd, until containerd starts the replacement and until the API
//     reports it running.
//
// It needs root and containerd at /run/containerd/containerd.sock, refuses to start
// while another berth daemon runs a data plane on the host, and leaves nothing behind
// (stacks, the node's containers, sandboxes, bridges and rules, the namespace), also
// on an error or Ctrl-C. The last line is converge_ratio=<berth/baseline>, the worse of
// the two pairs of the same containers.
//
//   - push to running (issue 6): `git push` to a push source of a commit that
//     changes the image tag of a 10-service stack, until every task runs it.
//
//     go run ./bench/converge [-replicas 20] [-runs 5] [-kills 10] [-pushes 10]
//     go run ./bench/converge -v -log-level debug -daemon-log /tmp/berth.log   # timings to line up
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/internal/clustertest"
	"github.com/berthd/berth/internal/ctrtest"
	"github.com/berthd/berth/internal/testimage"
	"github.com/berthd/berth/runtime/logdriver"
)

const (
	image = "berth.test/busybox:1"
	// goal is issue 5's bound on berth's converge time over the bare containerd
	// client's.
	goal = 1.3
)

// argv is every container's command, berth's and the baseline's.
var argv = []string{"sleep", "100000"}

// stackFile is the converge stack: one service on the stack's default network.
// SIGKILL as the stop signal: busybox sleep as pid 1 ignores SIGTERM, and the
// removal between runs is not what is measured.
const stackFile = `
services:
  sleep:
    image: ` + image + `
    command: ["sleep", "100000"]
    stop_signal: SIGKILL
    stop_grace_period: 1s
%s    deploy:
      replicas: %d
      restart_policy: {condition: any, delay: 0s}
`

type config struct {
	replicas, runs, kills int
	pushes                int
	bin, containerd       string
	logLevel, daemonLog   string
	// verbose prints when each measurement ran, to line it up with the daemon's
	// debug log or a system-wide profile.
	verbose bool
}

func main() {
	var cfg config
	flag.IntVar(&cfg.replicas, "replicas", 20, "Replicas of the service (and containers of the baseline)")
	flag.IntVar(&cfg.runs, "runs", 5, "Converge measurements of berth and of the baseline, interleaved")
	flag.IntVar(&cfg.kills, "kills", 10, "Task kills for the restart latency")
	flag.IntVar(&cfg.pushes, "pushes", 10, "git pushes for the push-to-running latency (0: none)")
	flag.StringVar(&cfg.bin, "berth", "", "berth binary (default: build ./cmd/berth)")
	flag.StringVar(&cfg.containerd, "containerd", "/run/containerd/containerd.sock", "containerd's socket")
	flag.StringVar(&cfg.logLevel, "log-level", "warn", "The daemon's log level (debug logs the agent's timings)")
	flag.StringVar(&cfg.daemonLog, "daemon-log", "", "Copy the daemon's log to this file at the end")
	flag.BoolVar(&cfg.verbose, "v", false, "Print the wall-clock window of each measurement (UTC), for lining up with -log-level debug or perf")
	flag.Parse()
	if cfg.replicas < 1 || cfg.runs < 1 || cfg.kills < 0 || cfg.pushes < 0 {
		fmt.Fprintln(os.Stderr, "converge: -replicas and -runs must be at least 1, -kills and -pushes at least 0")
		os.Exit(2)
	}
	// Ctrl-C cancels the measurement; the cleanup still runs, on its own context.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg)
	interrupted := ctx.Err() != nil
	stop()
	switch {
	case interrupted:
		// What failed then is only the cancellation; cleanup errors were printed.
		fmt.Fprintln(os.Stderr, "converge: interrupted")
		os.Exit(130)
	case err != nil:
		fmt.Fprintln(os.Stderr, "converge:", err)
		os.Exit(2)
	}
}

// bench is the one daemon and the containerd view of its namespace.
type bench struct {
	cfg config
	d   *clustertest.Daemon
	api *api.Client
	ctr *ctrtest.Client
	// compose is the stack file of the default service, unconfined the one whose
	// tasks run without a seccomp filter.
	compose, unconfined string
	// root holds the baselines' files; logDriver is the daemon's log driver, which
	// baselines with berth's setup use too.
	root, logDriver string
	// started: the daemon ran, so there may be something to leave.
	started bool
}

func run(ctx context.Context, cfg config) (err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := checkAlone(); err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "berth-bench-converge-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	if cfg.bin == "" {
		if cfg.bin, err = clustertest.Build(ctx, root); err != nil {
			return err
		}
	}
	var rb [4]byte
	rand.Read(rb[:])
	ns := "berth-bench-" + hex.EncodeToString(rb[:])
	ports, err := clustertest.FreePorts(1)
	if err != nil {
		return err
	}
	ctr, err := ctrtest.New(cfg.containerd, ns)
	if err != nil {
		return err
	}
	d := clustertest.NewDaemon(cfg.bin, root, "bench-1", ports[0],
		"--log-level", cfg.logLevel, "--containerd", cfg.containerd, "--containerd-namespace", ns)
	bin, err := filepath.Abs(cfg.bin)
	if err != nil {
		return err
	}
	logDriver, _ := logdriver.Find(bin)
	b := &bench{cfg: cfg, d: d, api: d.Client(), ctr: ctr, compose: filepath.Join(root, "compose.yaml"),
		unconfined: filepath.Join(root, "unconfined.yaml"), root: root, logDriver: logDriver}
	// Registered before the daemon starts, so that a failed start is cleaned up too.
	// cleanup prints its own errors, also after an interrupt.
	defer func() {
		if cerr := b.cleanup(); cerr != nil && err == nil {
			err = errors.New("cleanup failed")
		}
	}()
	// Again: the build takes a while, and a test may have started meanwhile.
	if err := checkAlone(); err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	b.started = true
	if err := b.cli(ctx, "init"); err != nil {
		return err
	}
	if err := b.loadImage(ctx, root); err != nil {
		return err
	}
	if err := os.WriteFile(b.compose, fmt.Appendf(nil, stackFile, "", cfg.replicas), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(b.unconfined, fmt.Appendf(nil, stackFile, "    security_opt: [seccomp=unconfined]\n", cfg.replicas), 0o644); err != nil {
		return err
	}

	// What else runs on the host is part of what the figures mean on 2 cores.
	idle0 := machineCPU()
	time.Sleep(time.Second)
	fmt.Printf("machine CPU %.0f%% busy in the second before the runs (daemon idle)\n", machineCPU().busySince(idle0))
	fmt.Printf("one berth daemon (containerd namespace %s, log level %s); %d replicas of %q; %d runs, each of berth and the bare containerd client, "+
		"with containerd's default seccomp profile (berth's default, as Docker's) and without a filter (security_opt seccomp=unconfined); "+
		"the bare client makes berth's containers but for their network (files, cgroup mount, log driver: %s), and bare ones\n",
		ns, cfg.logLevel, cfg.replicas, strings.Join(argv, " "), cfg.runs, logDriver)
	pid, err := daemonPID(d.Socket)
	if err != nil {
		return err
	}
	// Per run, interleaved: berth, then the bare client's same containers, then its
	// bare ones, with the seccomp profile and then without a filter.
	type series struct {
		name    string
		compose string // berth's stack file; empty for the bare client
		opts    []ctrtest.RunOption
		setup   bool // the bare client makes berth's containers (berthSetup)
		took    []time.Duration
	}
	seccomp := []ctrtest.RunOption{ctrtest.WithDefaultSeccomp()}
	berth := &series{name: "berth", compose: b.compose}
	sameSeccomp := &series{name: "same+seccomp", setup: true, opts: seccomp}
	bareSeccomp := &series{name: "bare+seccomp", opts: seccomp}
	unconfined := &series{name: "berth unconfined", compose: b.unconfined}
	same := &series{name: "same", setup: true}
	bare := &series{name: "bare"}
	all := []*series{berth, sameSeccomp, bareSeccomp, unconfined, same, bare}
	// Run 0 is a warm-up, not counted: right after init the agent may still be in
	// the back-off of its first watch, and the first deploy fills caches on both
	// sides.
	for i := 0; i <= cfg.runs; i++ {
		name := fmt.Sprintf("run %d:", i)
		if i == 0 {
			name = "warm-up (not counted):"
		}
		for _, se := range all {
			var took time.Duration
			if se.compose != "" {
				took, err = b.converge(ctx, name, se.name, se.compose, pid)
			} else {
				took, err = b.baseline(ctx, name, se.name, se.setup, se.opts...)
			}
			if err != nil {
				return err
			}
			if i > 0 {
				se.took = append(se.took, took)
			}
		}
	}
	med := func(se *series) time.Duration { return median(se.took) }
	ratio := func(x, y *series) float64 { return float64(med(x)) / float64(med(y)) }
	withSeccomp, without := ratio(berth, sameSeccomp), ratio(unconfined, same)
	worse := max(withSeccomp, without)
	verdict := "met"
	if worse > goal {
		verdict = "not met"
	}
	fmt.Printf("converge, median of %d, against the same containers: with the default seccomp profile: berth %s, bare client %s: %.2f; "+
		"without a filter: berth %s, bare client %s: %.2f (goal <= %.1f for both: %s)\n",
		cfg.runs, ms(med(berth)), ms(med(sameSeccomp)), withSeccomp, ms(med(unconfined)), ms(med(same)), without, goal, verdict)
	fmt.Printf("converge, median of %d, against bare containers (loopback only, no files, no logs): with the seccomp profile: bare client %s: %.2f; "+
		"without a filter: bare client %s: %.2f; berth's default against the bare client without a filter: %.2f\n",
		cfg.runs, ms(med(bareSeccomp)), ratio(berth, bareSeccomp), ms(med(bare)), ratio(unconfined, bare), ratio(berth, bare))

	if cfg.kills > 0 {
		if err := b.restarts(ctx); err != nil {
			return fmt.Errorf("restart latency: %w", err)
		}
	}
	if cfg.pushes > 0 {
		if err := b.pushes(ctx, root); err != nil {
			return fmt.Errorf("push to running: %w", err)
		}
	}
	// The worse of the two pairs of the same containers.
	fmt.Printf("converge_ratio=%.2f\n", worse)
	return nil
}

func (b *bench) window(what string, from time.Time) {
	if b.cfg.verbose {
		const layout = "15:04:05.000"
		fmt.Printf("window %s: %s %s\n", what, from.UTC().Format(layout), time.Now().UTC().Format(layout))
	}
}

// baseline starts the replicas' containers with the bare containerd client, and
// removes them.
func (b *bench) baseline(ctx context.Context, name, what string, setup bool, opts ...ctrtest.RunOption) (time.Duration, error) {
	if setup {
		dir, err := os.MkdirTemp(b.root, "baseline-")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		opts = append(opts, berthSetup(dir, b.logDriver))
	}
	cpu0, from := machineCPU(), time.Now()
	took, err := b.ctr.RunParallel(ctx, image, b.cfg.replicas, argv, opts...)
	busy := machineCPU().busySince(cpu0)
	b.window(name+" "+what, from)
	if rerr := b.ctr.RemoveContainers(context.WithoutCancel(ctx), ctrtest.MatchParallel); rerr != nil {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", name, what, err)
	}
	fmt.Printf("%s %-16s %d containers started in parallel after %s; machine CPU %.0f%% busy\n", name, what, b.cfg.replicas, ms(took), busy)
	return took, nil
}

// cli runs the berth CLI against the daemon and fails on a non-zero exit.
func (b *bench) cli(ctx context.Context, args ...string) error {
	return b.d.CLI(ctx, "", args...).Err()
}

func (b *bench) loadImage(ctx context.Context, root string) error {
	return b.loadImageNamed(ctx, root, image)
}

// loadImageNamed builds the test image under name and loads it into the node.
func (b *bench) loadImageNamed(ctx context.Context, root, name string) error {
	path := filepath.Join(root, "image.tar")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = testimage.Build(f, testimage.Options{Name: name})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("build the test image: %w", err)
	}
	return b.cli(ctx, "image", "load", path)
}

// measurement is one converge of berth, each figure from the start of the deploy
// command.
type measurement struct {
	running     time.Duration // the API reports every replica running
	cli         time.Duration // `stack deploy --detach=false` returned
	first, last time.Duration // containerd's first and last task start events
}

// converge measures one converge of the stack in composeFile (what names it in the
// output), prints it and removes the stack.
func (b *bench) converge(ctx context.Context, name, what, composeFile string, pid int) (time.Duration, error) {
	const stack = "bench"
	cpu0, daemon0, from := machineCPU(), processCPU(pid), time.Now()
	m, err := b.measureConverge(ctx, stack, composeFile)
	b.window(name+" "+what, from)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", name, what, err)
	}
	busy, daemonCPU := machineCPU().busySince(cpu0), processCPU(pid)-daemon0
	fmt.Printf("%s %-16s %d/%d running (API) after %s; deploy --detach=false returned after %s; containerd started the first task after %s, the last after %s; machine CPU %.0f%% busy, berth daemon %s CPU\n",
		name, what, b.cfg.replicas, b.cfg.replicas, ms(m.running), ms(m.cli), ms(m.first), ms(m.last), busy, ms(daemonCPU))
	if err := b.removeStack(ctx, stack); err != nil {
		return 0, fmt.Errorf("%s %s: %w", name, what, err)
	}
	return m.running, nil
}

// measureConverge deploys the stack and waits until the API reports every replica
// running, watching containerd's task starts on the side to tell berth's pipeline
// from its reporting.
func (b *bench) measureConverge(ctx context.Context, stack, composeFile string) (measurement, error) {
	var m measurement
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	starts, err := b.ctr.TaskStarts(ctx)
	if err != nil {
		return m, err
	}
	service := stack + "_sleep"
	type result struct {
		took time.Duration
		err  error
	}
	// A deploy that fails ends the watch, which would otherwise wait for tasks that
	// never come.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	start := time.Now()
	cliDone := make(chan result, 1)
	go func() {
		err := b.cli(ctx, "stack", "deploy", "-c", composeFile, "--detach=false", "--timeout", "90s", stack)
		if err != nil {
			wcancel()
		}
		cliDone <- result{time.Since(start), err}
	}()
	err = b.api.WatchServices(wctx, stack, func(svcs []*api.ServiceStatus) (bool, error) {
		for _, s := range svcs {
			if s.Name == service {
				return s.Desired == uint64(b.cfg.replicas) && s.Running >= s.Desired, nil
			}
		}
		return false, nil
	})
	m.running = time.Since(start)
	cli := <-cliDone
	if cli.err != nil {
		return m, cli.err
	}
	if err != nil {
		return m, fmt.Errorf("watch %s: %w", service, err)
	}
	m.cli = cli.took
	// Every start event is in by now: a task runs for the API only after
	// containerd started it.
	seen := map[string]bool{}
	for len(seen) < b.cfg.replicas {
		select {
		case ev, ok := <-starts:
			if !ok {
				return m, errors.New("containerd's event stream ended")
			}
			if seen[ev.ContainerID] {
				continue
			}
			seen[ev.ContainerID] = true
			at := ev.At.Sub(start)
			if len(seen) == 1 {
				m.first = at
			}
			m.last = at
		case <-time.After(5 * time.Second):
			return m, fmt.Errorf("containerd reported %d task starts, want %d", len(seen), b.cfg.replicas)
		}
	}
	return m, nil
}

// removeStack removes a stack and waits until containerd holds none of its
// containers, so that the next measurement starts from an idle node.
func (b *bench) removeStack(ctx context.Context, stack string) error {
	if err := b.cli(ctx, "stack", "rm", stack); err != nil {
		return err
	}
	return clustertest.Eventually(ctx, time.Minute, func() error {
		left, err := b.ctr.Tasks(ctx, map[string]string{"io.berth.stack": stack})
		if err != nil {
			return err
		}
		if len(left) > 0 {
			return fmt.Errorf("stack %s: %d containers left", stack, len(left))
		}
		return nil
	})
}

// restarts measures, kill after kill, how long a SIGKILLed task takes to be
// replaced: until containerd starts the replacement, and until the API reports it
// running.
func (b *bench) restarts(ctx context.Context) error {
	const stack = "restart"
	service := stack + "_sleep"
	if err := b.cli(ctx, "stack", "deploy", "-c", b.compose, "--detach=false", "--timeout", "90s", stack); err != nil {
		return err
	}
	starts, err := b.ctr.TaskStarts(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("restart: service of %d replicas (restart_policy any, delay 0); %d kills, one at a time, SIGKILL through containerd\n",
		b.cfg.replicas, b.cfg.kills)
	var ctrT, apiT []time.Duration
	for k := 1; k <= b.cfg.kills; k++ {
		all, err := b.ctr.Tasks(ctx, map[string]string{"io.berth.service": service})
		if err != nil {
			return err
		}
		known := map[string]bool{}
		var running []string
		for _, t := range all {
			known[t.ID] = true
			if t.Status == "running" {
				running = append(running, t.ID)
			}
		}
		if len(running) == 0 {
			return fmt.Errorf("kill %d: no running task of %s", k, service)
		}
		slices.Sort(running)
		victim := running[k%len(running)]
		// Starts from before this kill are not its replacement.
		for drained := false; !drained; {
			select {
			case <-starts:
			default:
				drained = true
			}
		}
		_, meta, err := b.api.Tasks(ctx, api.TaskFilter{Service: service}, api.Query{})
		if err != nil {
			return err
		}

		kctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		apiDone := make(chan error, 1)
		var apiAt time.Duration
		start := time.Now()
		if err := b.ctr.Kill(kctx, victim); err != nil {
			cancel()
			return fmt.Errorf("kill %d: %w", k, err)
		}
		go func() {
			err := waitNewRunning(kctx, b.api, service, known, meta.Index)
			apiAt = time.Since(start)
			apiDone <- err
		}()
		var ctrAt time.Duration
	events:
		for {
			select {
			case ev, ok := <-starts:
				if !ok {
					cancel()
					return errors.New("containerd's event stream ended")
				}
				if !known[ev.ContainerID] {
					ctrAt = ev.At.Sub(start)
					break events
				}
			case <-kctx.Done():
				cancel()
				return fmt.Errorf("kill %d: containerd started no replacement of %s within 30s", k, victim)
			}
		}
		err = <-apiDone
		cancel()
		if err != nil {
			return fmt.Errorf("kill %d: %w", k, err)
		}
		ctrT, apiT = append(ctrT, ctrAt), append(apiT, apiAt)
		fmt.Printf("kill %d: %s -> replacement started (containerd) after %s, running (API) after %s\n",
			k, victim[:12], ms(ctrAt), ms(apiAt))
		if err := b.settle(ctx, service); err != nil {
			return fmt.Errorf("kill %d: %w", k, err)
		}
	}
	fmt.Printf("restart, over %d kills: replacement started (containerd) p50 %s, max %s; running (API) p50 %s, max %s\n",
		len(ctrT), ms(median(ctrT)), ms(slices.Max(ctrT)), ms(median(apiT)), ms(slices.Max(apiT)))
	return b.removeStack(ctx, stack)
}

// waitNewRunning waits, by blocking queries from index, until the API reports a
// task of service running that is none of known.
func waitNewRunning(ctx context.Context, c *api.Client, service string, known map[string]bool, index uint64) error {
	for {
		tasks, meta, err := c.Tasks(ctx, api.TaskFilter{Service: service}, api.Query{Index: index, Wait: 10 * time.Second})
		if err != nil {
			return fmt.Errorf("tasks of %s: %w", service, err)
		}
		index = meta.Index
		for _, t := range tasks {
			if !known[t.ID] && t.Status.State == model.TaskRunning {
				return nil
			}
		}
	}
}

// settle waits until the service runs all its replicas again, for the API and for
// containerd, before the next kill.
func (b *bench) settle(ctx context.Context, service string) error {
	return clustertest.Eventually(ctx, 30*time.Second, func() error {
		s, _, err := b.api.Service(ctx, service, api.Query{})
		if err != nil {
			return err
		}
		if s.Running != s.Desired {
			return fmt.Errorf("%s: %d/%d running", service, s.Running, s.Desired)
		}
		tasks, err := b.ctr.Tasks(ctx, map[string]string{"io.berth.service": service})
		if err != nil {
			return err
		}
		n := 0
		for _, t := range tasks {
			if t.Status == "running" {
				n++
			}
		}
		if n != b.cfg.replicas {
			return fmt.Errorf("containerd runs %d tasks of %s", n, service)
		}
		return nil
	})
}

// cleanup leaves the cluster (which removes the node's containers, sandboxes,
// bridges and rules), kills the daemon and removes the containerd namespace. It runs
// on a context of its own: the run's may be cancelled by then.
func (b *bench) cleanup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errs []error
	if !b.d.Running() && b.started {
		// Ctrl-C reaches the daemon too (same process group) and stops it; only a
		// running daemon can leave, which is what removes its sandboxes and bridges.
		_ = b.d.Kill()
		if err := b.d.Start(ctx); err != nil {
			errs = append(errs, fmt.Errorf("cleanup: restart the daemon to leave: %w", err))
		}
	}
	if b.d.Running() {
		if r := b.d.CLI(ctx, "", "leave", "--force"); r.Code != 0 {
			errs = append(errs, fmt.Errorf("cleanup: %w", r.Err()))
		}
	}
	if err := b.d.Kill(); err != nil {
		errs = append(errs, fmt.Errorf("cleanup: %w", err))
	}
	if b.cfg.daemonLog != "" {
		if err := copyFile(b.cfg.daemonLog, b.d.LogPath); err != nil {
			errs = append(errs, fmt.Errorf("cleanup: keep the daemon's log: %w", err))
		}
	}
	if err := b.ctr.RemoveNamespace(ctx); err != nil {
		errs = append(errs, fmt.Errorf("cleanup: %w", err))
	}
	b.ctr.Close()
	for _, err := range errs {
		fmt.Fprintln(os.Stderr, "converge:", err)
	}
	return errors.Join(errs...)
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// median of ds: the upper one of an even count.
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// cpuStat is the machine's CPU time, in clock ticks, from /proc/stat.
type cpuStat struct{ busy, total uint64 }

func machineCPU() cpuStat {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuStat{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var st cpuStat
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		st.total += v
		// idle and iowait are the CPU doing nothing.
		if i != 3 && i != 4 {
			st.busy += v
		}
	}
	return st
}

// busySince is the share of the machine's CPU time spent busy since s, in percent.
func (c cpuStat) busySince(s cpuStat) float64 {
	if c.total <= s.total {
		return 0
	}
	return 100 * float64(c.busy-s.busy) / float64(c.total-s.total)
}

// processCPU is the user and system CPU time pid used so far; 0 if unknown.
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command, which may hold spaces, start after its ')'.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b)[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	// Linux reports these in USER_HZ, 100 on every architecture Go supports.
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// daemons lists the `berth daemon` processes of the host, by pid, with their
// arguments.
func daemons() (map[int][]string, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	out := map[int][]string{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) > 1 && filepath.Base(args[0]) == "berth" && args[1] == "daemon" {
			out[pid] = args
		}
	}
	return out, nil
}

// daemonPID finds the daemon that serves socket: clustertest does not hand out its
// process.
func daemonPID(socket string) (int, error) {
	ds, err := daemons()
	if err != nil {
		return 0, err
	}
	for pid, args := range ds {
		if slices.Contains(args, socket) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no berth daemon process serves %s", socket)
}

// checkAlone refuses to start while another daemon runs a data plane on the host:
// only one may own the host's berth bridges and nftables table, and its containers
// would share the CPU being measured. Simulated agents own nothing.
func checkAlone() error {
	ds, err := daemons()
	if err != nil {
		return err
	}
	for pid, args := range ds {
		if !slices.Contains(args, "--sim-agent") {
			return fmt.Errorf("another berth daemon runs a data plane on this host (pid %d, %s): run again once it is gone",
				pid, strings.Join(args, " "))
		}
	}
	return nil
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
