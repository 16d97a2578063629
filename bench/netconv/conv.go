package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/internal/ctrtest"
	"github.com/berthd/berth/runtime/executor"
)

const (
	// pollEvery is how often the client's namespace is looked at during a round.
	pollEvery = 5 * time.Millisecond
	// roundTimeout bounds one round: the kill, the replacement and the looks.
	roundTimeout = 90 * time.Second
)

// roundResult is what one round measured.
type roundResult struct {
	goneDNS, goneVIP time.Duration // from the kill
	inDNS, reachable time.Duration // from the replacement's start event
	node             string
	killed, replaced netip.Addr
	// dnsPoll and vipPoll are the mean time between two looks at the resolver and
	// at the VIP's map: the resolution of the figures.
	dnsPoll, vipPoll time.Duration
}

// replacement is the task containerd started after the kill: its address and when
// containerd published its start.
type replacement struct {
	addr    netip.Addr
	started time.Time
	err     error
}

// convergence runs the kill rounds, alternating between the two workers, and prints
// each round and the percentiles.
func (b *bench) convergence(ctx context.Context, rounds int) error {
	var results []roundResult
	addrs := map[int]netip.Addr{}
	for r := range rounds {
		if err := b.waitWeb(ctx, addrs); err != nil {
			return fmt.Errorf("before round %d: %w", r+1, err)
		}
		node := 1 + r%2
		res, err := b.round(ctx, node, addrs[node])
		if err != nil {
			return fmt.Errorf("round %d: %w", r+1, err)
		}
		fmt.Printf("round %2d: killed %s on %s: gone from DNS %s, from the VIP %s; replacement %s in DNS %s, reachable %s after its start\n",
			r+1, res.killed, res.node, ms(res.goneDNS), ms(res.goneVIP), res.replaced, ms(res.inDNS), ms(res.reachable))
		results = append(results, res)
	}
	printPercentiles(results)
	return nil
}

// round kills the web task of node i, whose address is killed, and measures.
func (b *bench) round(ctx context.Context, i int, killed netip.Addr) (roundResult, error) {
	n := b.lab.Node(i)
	res := roundResult{node: n.Name, killed: killed}
	ctr, err := ctrtest.New(b.containerd, n.Namespace)
	if err != nil {
		return res, err
	}
	defer ctr.Close()
	victim, err := webContainer(ctx, ctr)
	if err != nil {
		return res, fmt.Errorf("%s: %w", n.Name, err)
	}
	if err := b.settle(ctx, victim); err != nil {
		return res, err
	}
	rctx, cancel := context.WithTimeout(ctx, roundTimeout)
	defer cancel()
	starts, err := ctr.TaskStarts(rctx)
	if err != nil {
		return res, err
	}
	repl := make(chan replacement, 1)
	go func() { repl <- b.replacement(rctx, starts) }()
	vipGone := make(chan looked, 1)
	t0 := time.Now()
	go func() { vipGone <- b.pollVIP(rctx, killed) }()
	if err := ctr.Kill(ctx, victim); err != nil {
		return res, fmt.Errorf("kill %s on %s: %w", victim, n.Name, err)
	}
	p, perr := b.probe(rctx, killed, repl)
	if perr != nil {
		cancel() // the round failed: no need to wait out the VIP's poller
	}
	vip := <-vipGone
	if err := errors.Join(perr, vip.err); err != nil {
		return res, err
	}
	res.goneDNS, res.goneVIP = p.gone.Sub(t0), vip.at.Sub(t0)
	res.dnsPoll, res.vipPoll = time.Since(t0)/time.Duration(max(p.polls, 1)), vip.at.Sub(t0)/time.Duration(max(vip.polls, 1))
	res.inDNS, res.reachable = p.inDNS.Sub(p.repl.started), p.reachable.Sub(p.repl.started)
	res.replaced = p.repl.addr
	return res, nil
}

// settle waits until task id has run long enough that its failure is no crash loop
// (orchestrator.BackoffReset, after the delay it waited): the replacement then
// starts at once instead of after a back-off that doubles every round.
func (b *bench) settle(ctx context.Context, id string) error {
	tasks, err := b.running(ctx, "web")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		if t.ID != id {
			continue
		}
		since := t.CreatedAt
		if t.NotBefore.After(since) {
			since = t.NotBefore
		}
		wait := time.Until(since.Add(orchestrator.BackoffReset + time.Second))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
			return nil
		}
	}
	return fmt.Errorf("web container %s is no running task", id)
}

// webContainer is the ID of the running web container of a node's namespace.
func webContainer(ctx context.Context, ctr *ctrtest.Client) (string, error) {
	tasks, err := ctr.Tasks(ctx, map[string]string{executor.LabelService: stack + "_web"})
	if err != nil {
		return "", err
	}
	for _, t := range tasks {
		if t.Status == "running" {
			return t.ID, nil
		}
	}
	return "", fmt.Errorf("no running web container among %d", len(tasks))
}

// replacement waits for the first task start after the kill and finds the task's
// address (the container's ID is the task's).
func (b *bench) replacement(ctx context.Context, starts <-chan ctrtest.TaskStart) replacement {
	var ev ctrtest.TaskStart
	select {
	case <-ctx.Done():
		return replacement{err: fmt.Errorf("no task started: %w", ctx.Err())}
	case e, ok := <-starts:
		if !ok {
			// The stream also closes when ctx ends.
			return replacement{err: fmt.Errorf("no task started: containerd's event stream ended (%v)", ctx.Err())}
		}
		ev = e
	}
	r := replacement{started: ev.At}
	// The task's row, with its address, was written before its agent started it;
	// polling at the probe's pace keeps the probe's TCP check from waiting on this.
	for ctx.Err() == nil {
		tasks, _, err := b.api.Tasks(ctx, api.TaskFilter{Service: stack + "_web"}, api.Query{})
		if err == nil {
			for _, t := range tasks {
				if a, ok := meshAddr(t.Task); ok && t.ID == ev.ContainerID {
					r.addr = a
					return r
				}
			}
		}
		time.Sleep(pollEvery)
	}
	r.err = fmt.Errorf("the started container %s is no web task with an address on %s: %w", ev.ContainerID, meshSubnet, ctx.Err())
	return r
}

// probeResult is when the client's namespace saw each change.
type probeResult struct {
	gone, inDNS, reachable time.Time
	repl                   replacement
	polls                  int
}

// probe looks from the client's namespace every pollEvery until the killed address
// left tasks.web and the replacement's is in it and takes connections on webPort.
// A replacement on the killed task's address counts only once that address left.
func (b *bench) probe(ctx context.Context, killed netip.Addr, repl <-chan replacement) (probeResult, error) {
	var p probeResult
	var got bool
	// firstSeen is when each address was first in tasks.web (the killed one: after
	// it left), so that the replacement's counts from when it was listed, not from
	// when its address was known here.
	firstSeen := map[netip.Addr]time.Time{}
	err := inNetNS(b.client.netns, func() error {
		for {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("client's namespace at the deadline: killed %s gone at %v, replacement %v in DNS at %v, reachable at %v: %w",
					killed, p.gone, p.repl, p.inDNS, p.reachable, err)
			}
			listed, err := lookup("tasks.web")
			now := time.Now()
			p.polls++
			if err == nil && p.gone.IsZero() && !slices.Contains(listed, killed) {
				p.gone = now
			}
			for _, a := range listed {
				if _, ok := firstSeen[a]; !ok && (a != killed || !p.gone.IsZero()) {
					firstSeen[a] = now
				}
			}
			if !got {
				select {
				case p.repl = <-repl:
					got = true
					if p.repl.err != nil {
						return p.repl.err
					}
				default:
				}
			}
			if got && (p.repl.addr != killed || !p.gone.IsZero()) {
				if at, ok := firstSeen[p.repl.addr]; ok && p.inDNS.IsZero() {
					p.inDNS = at
				}
				if p.reachable.IsZero() && dialOK(netip.AddrPortFrom(p.repl.addr, webPort), 100*time.Millisecond) {
					p.reachable = time.Now()
				}
			}
			if !p.gone.IsZero() && !p.inDNS.IsZero() && !p.reachable.IsZero() {
				return nil
			}
			time.Sleep(pollEvery)
		}
	})
	return p, err
}

// looked is when a poller saw what it waited for, after how many looks.
type looked struct {
	at    time.Time
	polls int
	err   error
}

// pollVIP reads the VIP's backend map in the client's namespace (nft, as an
// operator would) until it no longer holds addr.
func (b *bench) pollVIP(ctx context.Context, addr netip.Addr) looked {
	name := "vip-" + strings.ReplaceAll(b.vip.String(), ".", "-")
	quoted := `"` + addr.String() + `"`
	for polls := 1; ; polls++ {
		out, err := exec.CommandContext(ctx, "nsenter", "--net="+b.client.netns,
			"nft", "-j", "list", "map", "ip", "berth-vip", name).CombinedOutput()
		now := time.Now()
		if ctx.Err() != nil {
			return looked{err: fmt.Errorf("map %s still holds %s at the deadline: %w", name, addr, ctx.Err())}
		}
		if err == nil && !strings.Contains(string(out), quoted) {
			return looked{at: now, polls: polls}
		}
		time.Sleep(pollEvery)
	}
}

// printPercentiles prints p50 and p99 of each measurement (nearest rank: with
// fewer than 100 rounds p99 is the worst).
func printPercentiles(results []roundResult) {
	for _, m := range []struct {
		what string
		of   func(roundResult) time.Duration
	}{
		{"task killed -> gone from tasks.web", func(r roundResult) time.Duration { return r.goneDNS }},
		{"task killed -> gone from the VIP's map", func(r roundResult) time.Duration { return r.goneVIP }},
		{"replacement started -> in tasks.web", func(r roundResult) time.Duration { return r.inDNS }},
		{"replacement started -> TCP connect ok", func(r roundResult) time.Duration { return r.reachable }},
		// The resolution of the figures above.
		{"(time between two looks at tasks.web)", func(r roundResult) time.Duration { return r.dnsPoll }},
		{"(time between two looks at the VIP's map)", func(r roundResult) time.Duration { return r.vipPoll }},
	} {
		var ds []time.Duration
		for _, r := range results {
			ds = append(ds, m.of(r))
		}
		slices.Sort(ds)
		fmt.Printf("%-44s p50 %s  p99 %s  (%d rounds)\n", m.what+":", ms(percentile(ds, 50)), ms(percentile(ds, 99)), len(ds))
	}
}

// percentile is the nearest-rank p-th percentile of sorted ds.
func percentile(ds []time.Duration, p int) time.Duration {
	i := (p*len(ds)+99)/100 - 1
	return ds[max(i, 0)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
