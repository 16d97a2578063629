package dns

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

// upstream answers like a recursive resolver would: "nx." does not exist, "fail."
// fails, "big." has more addresses than 512 bytes hold, any other name is
// 192.0.2.1.
func upstream(w mdns.ResponseWriter, req *mdns.Msg) {
	resp := new(mdns.Msg)
	resp.SetReply(req)
	q := req.Question[0]
	switch strings.ToLower(q.Name) {
	case "nx.":
		resp.Rcode = mdns.RcodeNameError
	case "fail.":
		resp.Rcode = mdns.RcodeServerFailure
	case "big.":
		for i := range 100 {
			resp.Answer = append(resp.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60},
				A: net.IPv4(198, 51, 100, byte(i))})
		}
	default:
		resp.Answer = append(resp.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60},
			A: net.IPv4(192, 0, 2, 1)})
	}
	_, udp := w.LocalAddr().(*net.UDPAddr)
	Fit(resp, req, udp)
	w.WriteMsg(resp)
}

// listenLoopback opens a UDP socket and a TCP listener on one port of 127.0.0.1.
func listenLoopback(t *testing.T) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp4", pc.LocalAddr().String())
		if err == nil {
			return pc, l
		}
		pc.Close()
	}
	t.Fatal("no port of 127.0.0.1 free for both UDP and TCP")
	return nil, nil
}

// serve serves the resolver on loopback sockets, and returns their address.
func serve(t *testing.T, r *Resolver) netip.AddrPort {
	t.Helper()
	pc, l := listenLoopback(t)
	s := Serve(r, pc, l)
	t.Cleanup(s.Close)
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// closedPort is a port of 127.0.0.1 where nothing listens.
func closedPort(t *testing.T) netip.AddrPort {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

func dial(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

func TestForward(t *testing.T) {
	up := serveHandler(t, mdns.HandlerFunc(upstream))
	dead := closedPort(t)
	tests := []struct {
		name      string
		upstreams []netip.AddrPort
		qname     string
		tcp       bool
		rcode     int
		answers   int
		err       bool
	}{
		{"answer", []netip.AddrPort{up}, "example.", false, mdns.RcodeSuccess, 1, false},
		{"answer over tcp", []netip.AddrPort{up}, "example.", true, mdns.RcodeSuccess, 1, false},
		{"dead upstream first", []netip.AddrPort{dead, up}, "example.", false, mdns.RcodeSuccess, 1, false},
		{"nxdomain", []netip.AddrPort{up}, "nx.", false, mdns.RcodeNameError, 0, false},
		{"truncated over udp, again over tcp", []netip.AddrPort{up}, "big.", false, mdns.RcodeSuccess, 100, false},
		{"servfail of every upstream", []netip.AddrPort{up, up}, "fail.", false, mdns.RcodeServerFailure, 0, false},
		{"dead upstreams", []netip.AddrPort{dead}, "example.", false, mdns.RcodeServerFailure, 0, true},
		{"no upstream", nil, "example.", false, mdns.RcodeServerFailure, 0, true},
	}
	for _, tt := range tests {
		f := Forwarder{Dial: dial, Upstreams: tt.upstreams}
		req := query(tt.qname, mdns.TypeA)
		resp, err := f.Forward(t.Context(), req, tt.tcp)
		if (err != nil) != tt.err || resp.Rcode != tt.rcode || len(resp.Answer) != tt.answers || resp.Id != req.Id {
			t.Errorf("%s: rcode %s, %d answers, id %d, error %v; want %s, %d answers, id %d, error %v", tt.name,
				mdns.RcodeToString[resp.Rcode], len(resp.Answer), resp.Id, err, mdns.RcodeToString[tt.rcode], tt.answers, req.Id, tt.err)
		}
	}
}

// serveHandler serves h on loopback sockets, and returns their address.
func serveHandler(t *testing.T, h mdns.Handler) netip.AddrPort {
	t.Helper()
	pc, l := listenLoopback(t)
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown(); pc.Close() })
	}
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// TestServe asks a served resolver over UDP and TCP, as a task's stub would.
func TestServe(t *testing.T) {
	up := serveHandler(t, mdns.HandlerFunc(upstream))
	ix := manyTasks(100)
	addr := serve(t, &Resolver{
		Index:     func() *Index { return ix },
		Networks:  []string{"n"},
		Forwarder: Forwarder{Dial: dial, Upstreams: []netip.AddrPort{up}},
	})
	tests := []struct {
		net, qname string
		qtype      uint16
		rcode      int
		answers    int
		truncated  bool
	}{
		{"udp", "many.", mdns.TypeA, mdns.RcodeSuccess, 100, true}, // 512 bytes hold fewer
		{"tcp", "many.", mdns.TypeA, mdns.RcodeSuccess, 100, false},
		{"udp", "many.", mdns.TypeAAAA, mdns.RcodeSuccess, 0, false},
		{"udp", "example.", mdns.TypeA, mdns.RcodeSuccess, 1, false},
		{"tcp", "nx.", mdns.TypeA, mdns.RcodeNameError, 0, false},
		{"udp", "big.", mdns.TypeA, mdns.RcodeSuccess, 100, true},
		{"tcp", "big.", mdns.TypeA, mdns.RcodeSuccess, 100, false},
	}
	for _, tt := range tests {
		c := mdns.Client{Net: tt.net}
		resp, _, err := c.Exchange(query(tt.qname, tt.qtype), addr.String())
		if err != nil {
			t.Errorf("%s %s over %s: %v", tt.qname, mdns.TypeToString[tt.qtype], tt.net, err)
			continue
		}
		// A truncated answer holds fewer records than there are.
		complete := len(resp.Answer) == tt.answers
		if resp.Rcode != tt.rcode || resp.Truncated != tt.truncated || complete == tt.truncated {
			t.Errorf("%s %s over %s: rcode %s, truncated %v, %d answers; want %s, truncated %v, %d answers", tt.qname, mdns.TypeToString[tt.qtype], tt.net,
				mdns.RcodeToString[resp.Rcode], resp.Truncated, len(resp.Answer), mdns.RcodeToString[tt.rcode], tt.truncated, tt.answers)
		}
	}
}
