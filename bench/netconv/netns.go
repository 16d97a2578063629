package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/berthd/berth/netstack/osthread"
)

// resolver is the embedded DNS server's address in every task's namespace.
const resolver = "127.0.0.11:53"

// inNetNS runs fn on a thread of its own in the network namespace at path (the
// process's own for ""), so that the sockets fn makes are that namespace's. fn must
// make its sockets on its own goroutine: dials with one literal address do.
func inNetNS(path string, fn func() error) error {
	return osthread.Throwaway(func() error {
		if path == "" {
			return fn()
		}
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("network namespace: %w", err)
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter %s: %w", path, err)
		}
		return fn()
	})
}

// lookup asks the resolver for name's A records over UDP; call it in a task's
// namespace.
func lookup(name string) ([]netip.Addr, error) {
	req := new(dns.Msg)
	req.SetQuestion(dns.Fqdn(name), dns.TypeA)
	c := dns.Client{Net: "udp", Timeout: time.Second}
	resp, _, err := c.Exchange(req, resolver)
	if err != nil {
		return nil, fmt.Errorf("ask %s for %s: %w", resolver, name, err)
	}
	if resp.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("%s for %s: %s", resolver, name, dns.RcodeToString[resp.Rcode])
	}
	var out []netip.Addr
	for _, rr := range resp.Answer {
		if a, ok := rr.(*dns.A); ok {
			if addr, ok := netip.AddrFromSlice(a.A.To4()); ok {
				out = append(out, addr)
			}
		}
	}
	return out, nil
}

// dialOK tells whether a TCP connection to addr succeeds within timeout.
func dialOK(addr netip.AddrPort, timeout time.Duration) bool {
	c, err := net.DialTimeout("tcp", addr.String(), timeout)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// get makes one HTTP/1.0 request on a connection of its own (closed by the server
// after the answer) and checks that the answer is a 200.
func get(addr netip.AddrPort) error {
	c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: netconv\r\n\r\n"); err != nil {
		return err
	}
	resp, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	line, _, _ := bytes.Cut(resp, []byte("\r\n"))
	if !bytes.HasPrefix(line, []byte("HTTP/1.")) || !bytes.Contains(line, []byte(" 200")) {
		return fmt.Errorf("answer %q", line)
	}
	return nil
}
