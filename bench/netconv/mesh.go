package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// target is where a routing-mesh measurement sends its requests, and from which
// network namespace ("": the host's, on the lab's host leg).
type target struct {
	name  string
	netns string
	addr  netip.AddrPort
}

// rate is what one measurement counted.
type rate struct {
	ok, failed int
	took       time.Duration
	firstErr   error
}

func (r rate) perSecond() float64 { return float64(r.ok) / r.took.Seconds() }

// mesh measures requests/s to solo (one task, on node-3) through the routing mesh
// of node-2 (no task of solo), through node-3's (the task's node), and straight to
// the task's address from the client task, sequentially and with concurrency
// connections at a time.
func (b *bench) mesh(ctx context.Context, d time.Duration, concurrency int) error {
	solo, err := b.running(ctx, "solo")
	if err != nil {
		return err
	}
	if len(solo) != 1 || solo[0].NodeHostname != b.lab.Node(2).Name {
		return fmt.Errorf("want one running solo task on %s, have %d", b.lab.Node(2).Name, len(solo))
	}
	addr, ok := meshAddr(solo[0].Task)
	if !ok {
		return fmt.Errorf("solo's task %s has no address on %s", solo[0].ID, meshSubnet)
	}
	targets := []target{
		{"host -> node-2:8081 (mesh, task on another node)", "", netip.AddrPortFrom(b.lab.Node(1).Addr, soloPort)},
		{"host -> node-3:8081 (mesh, task on that node)", "", netip.AddrPortFrom(b.lab.Node(2).Addr, soloPort)},
		{"client task (node-1) -> task address:8080 (overlay)", b.client.netns, netip.AddrPortFrom(addr, webPort)},
	}
	fmt.Printf("routing mesh to solo (1 task, on %s at %s), one HTTP/1.0 request per connection, %s each in %d interleaved slices:\n",
		b.lab.Node(2).Name, addr, d, meshSlices)
	for _, conc := range []int{1, concurrency} {
		rates, err := interleaved(ctx, targets, conc, d)
		if err != nil {
			return err
		}
		for i, t := range targets {
			r := rates[i]
			fmt.Printf("  %-52s %2d conn: %7.0f req/s (%d ok, %d failed%s)  node-2 mesh / this = %.2f\n",
				t.name, conc, r.perSecond(), r.ok, r.failed, firstError(r), rates[0].perSecond()/r.perSecond())
		}
	}
	return nil
}

// meshSlices is how many parts each routing-mesh measurement is cut into, the
// targets taking turns, so that what else loads the machine meanwhile weighs on
// each target alike.
const meshSlices = 5

// interleaved measures each target for d in total, in meshSlices turns.
func interleaved(ctx context.Context, targets []target, conc int, d time.Duration) ([]rate, error) {
	rates := make([]rate, len(targets))
	for range meshSlices {
		for i, t := range targets {
			r, err := measureRate(ctx, t, conc, d/meshSlices)
			if err != nil {
				return nil, err
			}
			rates[i].ok, rates[i].failed, rates[i].took = rates[i].ok+r.ok, rates[i].failed+r.failed, rates[i].took+r.took
			rates[i].firstErr = firstOf(rates[i].firstErr, r.firstErr)
		}
	}
	return rates, nil
}

func firstError(r rate) string {
	if r.firstErr == nil {
		return ""
	}
	return fmt.Sprintf(", first: %v", r.firstErr)
}

// measureRate sends requests to t from conc connections at a time for d. A target
// that answers no request is an error.
func measureRate(ctx context.Context, t target, conc int, d time.Duration) (rate, error) {
	var mu sync.Mutex
	var total rate
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	errs := make([]error, conc)
	for w := range conc {
		wg.Go(func() {
			errs[w] = inNetNS(t.netns, func() error {
				var r rate
				for time.Now().Before(end) && ctx.Err() == nil {
					if err := get(t.addr); err != nil {
						r.failed++
						r.firstErr = firstOf(r.firstErr, err)
						continue
					}
					r.ok++
				}
				mu.Lock()
				total.ok, total.failed = total.ok+r.ok, total.failed+r.failed
				total.firstErr = firstOf(total.firstErr, r.firstErr)
				mu.Unlock()
				return nil
			})
		})
	}
	wg.Wait()
	total.took = time.Since(start)
	for _, err := range errs {
		if err != nil {
			return total, fmt.Errorf("%s: %w", t.name, err)
		}
	}
	if ctx.Err() != nil {
		return total, ctx.Err()
	}
	if total.ok == 0 {
		return total, fmt.Errorf("%s: no request answered (%d failed, first: %v)", t.name, total.failed, total.firstErr)
	}
	return total, nil
}

// firstOf is the first non-nil error of a and b.
func firstOf(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
