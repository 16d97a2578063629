package dns

import (
	"fmt"
	"net/netip"
	"testing"

	mdns "github.com/miekg/dns"
)

func query(name string, qtype uint16) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func TestAnswer(t *testing.T) {
	ix := Build(testServices())
	tests := []struct {
		name    string
		qtype   uint16
		ours    bool
		answers []string // the records, as miekg prints them
	}{
		{"web.", mdns.TypeA, true, []string{"web.\t5\tIN\tA\t10.0.1.2"}},
		// The owner name is the question's, case and all.
		{"Tasks.Web.", mdns.TypeA, true, []string{"Tasks.Web.\t0\tIN\tA\t10.0.1.10", "Tasks.Web.\t0\tIN\tA\t10.0.1.11"}},
		// NODATA: the name is ours, with no record of the type.
		{"web.", mdns.TypeAAAA, true, nil},
		{"web.", mdns.TypeMX, true, nil},
		{"tasks.cache.", mdns.TypeA, false, nil}, // cache is on back only
		{"example.com.", mdns.TypeA, false, nil},
		{"web.svc.example.", mdns.TypeA, false, nil},
	}
	for _, tt := range tests {
		resp, ours := ix.Answer(query(tt.name, tt.qtype), []string{"front"})
		if ours != tt.ours {
			t.Errorf("%s %s: ours = %v, want %v", tt.name, mdns.TypeToString[tt.qtype], ours, tt.ours)
			continue
		}
		if !ours {
			continue
		}
		if resp.Rcode != mdns.RcodeSuccess || !resp.Response || !resp.Authoritative {
			t.Errorf("%s %s: rcode %s, response %v, authoritative %v", tt.name, mdns.TypeToString[tt.qtype],
				mdns.RcodeToString[resp.Rcode], resp.Response, resp.Authoritative)
		}
		var got []string
		for _, rr := range resp.Answer {
			got = append(got, rr.String())
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.answers) {
			t.Errorf("%s %s: answers %q, want %q", tt.name, mdns.TypeToString[tt.qtype], got, tt.answers)
		}
	}
}

func TestAnswerRefusesOddQueries(t *testing.T) {
	ix := Build(testServices())
	two := query("web.", mdns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	chaos := query("web.", mdns.TypeA)
	chaos.Question[0].Qclass = mdns.ClassCHAOS
	update := query("web.", mdns.TypeA)
	update.Opcode = mdns.OpcodeUpdate
	for name, m := range map[string]*mdns.Msg{"two questions": two, "class CH": chaos, "update": update} {
		if _, ours := ix.Answer(m, []string{"front"}); ours {
			t.Errorf("%s: answered from the index", name)
		}
	}
}

// manyTasks is an index with n ready tasks of one service on network "n".
func manyTasks(n int) *Index {
	var eps []Endpoint
	for i := range n {
		eps = append(eps, Endpoint{Network: "n", ServiceID: "s", Addr: netip.AddrFrom4([4]byte{10, 0, byte(i / 250), byte(1 + i%250)}), Ready: true})
	}
	return Build([]Service{{ID: "s", Name: "st_many", ShortName: "many", DNSRR: true}}, eps)
}

func TestFit(t *testing.T) {
	ix := manyTasks(100)
	tests := []struct {
		name      string
		edns      uint16 // 0: no OPT record
		udp       bool
		truncated bool
		maxLen    int
	}{
		{"udp without EDNS0", 0, true, true, mdns.MinMsgSize},
		{"udp with EDNS0 4096", 4096, true, false, 4096},
		{"udp with EDNS0 1000", 1000, true, true, 1000},
		{"udp with EDNS0 below 512", 100, true, true, mdns.MinMsgSize},
		{"tcp", 0, false, false, mdns.MaxMsgSize},
	}
	for _, tt := range tests {
		req := query("tasks.many.", mdns.TypeA)
		if tt.edns != 0 {
			req.SetEdns0(tt.edns, false)
		}
		resp, _ := ix.Answer(req, []string{"n"})
		Fit(resp, req, tt.udp)
		wire, err := resp.Pack()
		if err != nil {
			t.Fatalf("%s: pack: %v", tt.name, err)
		}
		if resp.Truncated != tt.truncated || len(wire) > tt.maxLen {
			t.Errorf("%s: truncated %v (%d records, %d bytes), want truncated %v within %d bytes",
				tt.name, resp.Truncated, len(resp.Answer), len(wire), tt.truncated, tt.maxLen)
		}
		if !tt.truncated && len(resp.Answer) != 100 {
			t.Errorf("%s: %d records, want 100", tt.name, len(resp.Answer))
		}
		if (tt.edns != 0) != (resp.IsEdns0() != nil) {
			t.Errorf("%s: EDNS0 in the reply %v, in the query %v", tt.name, resp.IsEdns0() != nil, tt.edns != 0)
		}
	}
}
