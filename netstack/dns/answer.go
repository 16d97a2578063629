package dns

import (
	"net"
	"net/netip"

	mdns "github.com/miekg/dns"
)

// ednsSize is the UDP payload size the resolver says it takes, in the replies to
// queries that say theirs (EDNS0). It is the size DNS flag day 2020 settled on:
// large enough for any answer but the largest task lists, small enough never to
// be fragmented.
const ednsSize = 1232

// Answer answers req for a task on the networks from the index. It returns false
// when the question is not about one of the services' names there: that goes
// upstream.
func (ix *Index) Answer(req *mdns.Msg, networks []string) (*mdns.Msg, bool) {
	if req.Opcode != mdns.OpcodeQuery || len(req.Question) != 1 {
		return nil, false
	}
	q := req.Question[0]
	if q.Qclass != mdns.ClassINET && q.Qclass != mdns.ClassANY {
		return nil, false
	}
	addrs, ttl, found := ix.Lookup(q.Name, networks)
	if !found {
		return nil, false
	}
	resp := new(mdns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	resp.RecursionAvailable = true
	for _, a := range addrs {
		if rr := addrRR(q, a, ttl); rr != nil {
			resp.Answer = append(resp.Answer, rr)
		}
	}
	return resp, true
}

// addrRR is the record of the address that answers q, nil when q asks for a type
// the address is not (an AAAA question, an IPv4 address): the name then has no
// record of that type, and the answer is NODATA, not NXDOMAIN.
func addrRR(q mdns.Question, a netip.Addr, ttl uint32) mdns.RR {
	hdr := mdns.RR_Header{Name: q.Name, Class: mdns.ClassINET, Ttl: ttl}
	switch {
	case a.Is4() && (q.Qtype == mdns.TypeA || q.Qtype == mdns.TypeANY):
		hdr.Rrtype = mdns.TypeA
		return &mdns.A{Hdr: hdr, A: net.IP(a.AsSlice())}
	case a.Is6() && (q.Qtype == mdns.TypeAAAA || q.Qtype == mdns.TypeANY):
		hdr.Rrtype = mdns.TypeAAAA
		return &mdns.AAAA{Hdr: hdr, AAAA: net.IP(a.AsSlice())}
	}
	return nil
}

// Fit makes resp fit what the asker of req takes: 512 bytes over UDP, or the size
// its EDNS0 record gives, with the TC bit set when records had to go (the asker
// then asks again over TCP); a reply to an EDNS0 query says EDNS0 too.
func Fit(resp, req *mdns.Msg, udp bool) {
	size := mdns.MaxMsgSize
	opt := req.IsEdns0()
	if udp {
		size = mdns.MinMsgSize
		if opt != nil {
			size = max(int(opt.UDPSize()), mdns.MinMsgSize)
		}
	}
	if opt != nil && resp.IsEdns0() == nil {
		resp.SetEdns0(ednsSize, false)
	}
	resp.Truncate(size)
}

// failure is the reply that says req could not be answered.
func failure(req *mdns.Msg, rcode int) *mdns.Msg {
	resp := new(mdns.Msg)
	resp.SetRcode(req, rcode)
	resp.RecursionAvailable = true
	return resp
}
