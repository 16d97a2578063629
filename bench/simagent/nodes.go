package simagent

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptrace"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/model"
)

// JoinNodes joins n simulated nodes (hostnames sim-00000 on) through /v1/join with
// the worker token, 32 at a time, each with its own key and certificate and addr(i)
// for its address, and returns each node's ID and mutual-TLS client.
func JoinNodes(ctx context.Context, n int, init *api.InitResponse, root *x509.Certificate, addr func(i int) string) ([]Joined, error) {
	anon, err := api.New(init.ManagerAddr, api.WithTLS(ca.ClientTLSConfig(root, tls.Certificate{}, ca.ManagerServerName)))
	if err != nil {
		return nil, err
	}
	clients := make([]Joined, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				j, err := joinOne(ctx, anon, init, root, fmt.Sprintf("sim-%05d", i), addr(i))
				if err != nil {
					errs <- err
					return
				}
				clients[i] = j
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return clients, nil
}

// Joined is a simulated node that joined: its ID and its client.
type Joined struct {
	ID     string
	Client *api.Client
}

func joinOne(ctx context.Context, anon *api.Client, init *api.InitResponse, root *x509.Certificate, hostname, addr string) (Joined, error) {
	keyPEM, csr, err := ca.NewNodeKeyAndCSR(hostname)
	if err != nil {
		return Joined{}, err
	}
	resp, err := anon.RequestJoin(ctx, api.NodeJoinRequest{Token: init.WorkerToken, CSR: csr, Hostname: hostname,
		Addr: addr, Platform: model.Platform{OS: "linux", Arch: "amd64"}})
	if err != nil {
		return Joined{}, fmt.Errorf("join %s: %w", hostname, err)
	}
	cert, err := tls.X509KeyPair([]byte(resp.Certificate), keyPEM)
	if err != nil {
		return Joined{}, err
	}
	c, err := api.New(init.ManagerAddr, api.WithTLS(ca.ClientTLSConfig(root, cert, ca.ManagerServerName)))
	return Joined{ID: resp.NodeID, Client: c}, err
}

// BeatStats counts simulated nodes' heartbeats and the connections they opened.
type BeatStats struct {
	Beats, Failures, Conns atomic.Int64
	MaxGap                 atomic.Int64 // nanoseconds
	first                  sync.Once
	err                    error
}

// gap records that a node sent two heartbeats d apart.
func (s *BeatStats) gap(d time.Duration) {
	for {
		cur := s.MaxGap.Load()
		if int64(d) <= cur || s.MaxGap.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

func (s *BeatStats) fail(err error) {
	s.Failures.Add(1)
	s.first.Do(func() { s.err = err })
}

// FirstError names the first failure, when there were failed.
func (s *BeatStats) FirstError(failed int64) string {
	if failed == 0 {
		return ""
	}
	s.first.Do(func() {})
	return fmt.Sprintf(" (the first: %v)", s.err)
}

// Heartbeat beats at the period the manager answers, from a random phase, waiting
// timeout for each answer (0: as a node of this build does).
func Heartbeat(ctx context.Context, c *api.Client, timeout time.Duration, st *BeatStats) {
	period := time.Second
	if !sleep(ctx, rand.N(period)) {
		return
	}
	trace := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if !i.Reused {
			st.Conns.Add(1)
		}
	}})
	var last time.Time
	for {
		if !last.IsZero() {
			st.gap(time.Since(last))
		}
		last = time.Now()
		bctx, cancel := context.WithTimeout(trace, cmp.Or(timeout, api.HeartbeatTimeout(period)))
		resp, err := c.Heartbeat(bctx, api.HeartbeatRequest{})
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			st.fail(err)
		default:
			st.Beats.Add(1)
			if resp.Period > 0 {
				period = time.Duration(resp.Period)
			}
		}
		if !sleep(ctx, period) {
			return
		}
	}
}

// CPUTime is the user+system CPU time of process pid (/proc/pid/stat, clock ticks of
// 10 ms).
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: the fields after it follow its ')'.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// API is the node's agent API over its client, as a real agent's.
func (j Joined) API() API { return remoteAPI(j) }

type remoteAPI Joined

func (r remoteAPI) Heartbeat(ctx context.Context) error {
	_, err := r.Client.Heartbeat(ctx, api.HeartbeatRequest{})
	return err
}

func (r remoteAPI) NodeTasks(ctx context.Context, q api.Query) ([]*model.Task, api.QueryMeta, error) {
	return r.Client.NodeTasks(ctx, r.ID, q)
}

func (r remoteAPI) ReportTaskStatus(ctx context.Context, reports []api.TaskStatusReport) error {
	return r.Client.ReportTaskStatus(ctx, reports)
}
