package daemon

import (
	"fmt"
	"net"
	"strconv"
)

// DefaultPort is the node's TCP port (raft and the API share it).
const DefaultPort = 4270

// advertiseAddr works out the address other nodes reach this one at, as Docker does
// for --advertise-addr: the flag (the listen port is added when it has none), else
// the listen address when it names one IP, else the local address of the route to
// remote (join), else the one non-loopback address of the machine.
func advertiseAddr(flag, listen, remote string) (string, error) {
	lhost, lport, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", listen, err)
	}
	if flag != "" {
		host, port, err := net.SplitHostPort(flag)
		if err != nil {
			host, port = flag, lport
		}
		if host == "" {
			return "", fmt.Errorf("invalid advertise address %q: no host", flag)
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			return "", fmt.Errorf("invalid advertise address %q: other nodes cannot reach an unspecified address", flag)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", fmt.Errorf("invalid advertise address %q: bad port", flag)
		}
		return net.JoinHostPort(host, port), nil
	}
	if ip := net.ParseIP(lhost); lhost != "" && (ip == nil || !ip.IsUnspecified()) {
		return net.JoinHostPort(lhost, lport), nil
	}
	if remote != "" {
		// A UDP "connection" sends nothing: it only asks the kernel for the route.
		conn, err := net.Dial("udp", remote)
		if err == nil {
			defer conn.Close()
			if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok && !ua.IP.IsUnspecified() {
				return net.JoinHostPort(ua.IP.String(), lport), nil
			}
		}
	}
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("list addresses to advertise: %w", err)
	}
	var found []string
	for _, a := range ifaddrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || !ipn.IP.IsGlobalUnicast() || ipn.IP.To4() == nil {
			continue
		}
		found = append(found, ipn.IP.String())
	}
	switch len(found) {
	case 1:
		return net.JoinHostPort(found[0], lport), nil
	case 0:
		return "", fmt.Errorf("could not choose an address to advertise: this machine has no non-loopback IPv4 address; use --advertise-addr")
	default:
		return "", fmt.Errorf("could not choose an address to advertise among %v: use --advertise-addr", found)
	}
}

// advertisedAddr is a net.Addr for the raft transport: the address as configured,
// not resolved, so that raft's configuration holds what the operator gave.
type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }
