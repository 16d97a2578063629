package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	mdns "github.com/miekg/dns"
)

// Dialer opens a connection to an upstream resolver ("udp" or "tcp"): netstack's
// opens it in the node's namespace, whose resolvers (loopback ones too) the
// forwarded names go to.
type Dialer func(ctx context.Context, network, address string) (net.Conn, error)

// upstreamTimeout bounds one try of one upstream: two of three upstreams may fail
// and the third still answer before a client's own first timeout (5 s for glibc
// and musl).
const upstreamTimeout = 1500 * time.Millisecond

// Forwarder sends the queries that are not about the services' names to the
// upstream resolvers, in order, until one answers.
type Forwarder struct {
	Dial      Dialer
	Upstreams []netip.AddrPort
}

// Forward returns the first upstream's answer to req that is neither SERVFAIL nor
// REFUSED (an upstream that cannot answer, where the next may), else the last
// answer, else SERVFAIL. It asks over TCP when the client did, and again over TCP
// when the answer over UDP came truncated.
func (f Forwarder) Forward(ctx context.Context, req *mdns.Msg, tcp bool) (*mdns.Msg, error) {
	var last *mdns.Msg
	var errs []error
	for _, up := range f.Upstreams {
		resp, err := f.exchange(ctx, req, up, tcp)
		if err == nil && resp.Truncated && !tcp {
			resp, err = f.exchange(ctx, req, up, true)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("upstream %s: %w", up, err))
			continue
		}
		if resp.Rcode != mdns.RcodeServerFailure && resp.Rcode != mdns.RcodeRefused {
			return resp, nil
		}
		last = resp
	}
	if last != nil {
		return last, nil
	}
	if len(f.Upstreams) == 0 {
		errs = append(errs, errors.New("no upstream resolver"))
	}
	return failure(req, mdns.RcodeServerFailure), errors.Join(errs...)
}

// exchange asks one upstream once, over a connection of its own: a new source
// port for every query makes forged answers as hard to land as the kernel's port
// randomness allows.
func (f Forwarder) exchange(ctx context.Context, req *mdns.Msg, up netip.AddrPort, tcp bool) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, upstreamTimeout)
	defer cancel()
	network := "udp"
	if tcp {
		network = "tcp"
	}
	conn, err := f.Dial(ctx, network, up.String())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	c := mdns.Client{Net: network}
	resp, _, err := c.ExchangeWithConnContext(ctx, req, &mdns.Conn{Conn: conn})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", network, err)
	}
	return resp, nil
}
