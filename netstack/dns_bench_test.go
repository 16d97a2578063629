package netstack

import (
	"os"
	"slices"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// BenchmarkEmbeddedDNS measures the latency of one query over UDP from inside a
// task's namespace: a name of the index (hit), and a name forwarded to the node's
// resolver on the node's loopback (forwarded miss); and, as the baseline, the
// same node resolver asked directly from the node's namespace (a miekg/dns server
// with no index, no redirect and no forwarding). Each reports its p50 and p99.
//
//	go test ./netstack/ -run '^$' -bench EmbeddedDNS -benchtime 20000x
func BenchmarkEmbeddedDNS(b *testing.B) {
	tn := newTestNode(b)
	tn.serveUpstream()
	if err := os.WriteFile(tn.resolv, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	front := testNetwork("dnsfront", "i16dns_front", "10.0.1.0/24")
	back := testNetwork("dnsback", "i16dns_back", "10.0.2.0/24")
	if err := tn.n.Apply(b.Context(), dnsTestView(front, back)); err != nil {
		b.Fatal(err)
	}
	sb, err := tn.n.Setup(b.Context(), "task-client", "client", []Attachment{attach(front, "10.0.1.5")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tn.n.Teardown(b.Context(), "task-client") })

	for _, bc := range []struct {
		name, ns, server, qname string
	}{
		{"hit", sb.NetNSPath, dnsListenAddr.String(), "web."},
		{"forwarded-miss", sb.NetNSPath, dnsListenAddr.String(), "nope.invalid."},
		{"baseline-upstream-direct", tn.hostNS, "127.0.0.1:53", "nope.invalid."},
	} {
		b.Run(bc.name, func(b *testing.B) {
			conn := &mdns.Conn{Conn: dialInNS(b, bc.ns, "udp", bc.server)}
			defer conn.Close()
			req := new(mdns.Msg)
			req.SetQuestion(bc.qname, mdns.TypeA)
			took := make([]time.Duration, 0, b.N)
			for b.Loop() {
				req.Id = mdns.Id()
				start := time.Now()
				if err := conn.WriteMsg(req); err != nil {
					b.Fatal(err)
				}
				resp, err := conn.ReadMsg()
				took = append(took, time.Since(start))
				if err != nil || resp.Id != req.Id {
					b.Fatalf("%s: %v (id %d, want %d)", bc.qname, err, resp.Id, req.Id)
				}
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2])/1e3, "p50-µs")
			b.ReportMetric(float64(took[len(took)*99/100])/1e3, "p99-µs")
		})
	}
}
