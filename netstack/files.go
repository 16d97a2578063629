package netstack

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// checkHostName keeps a name from breaking the hosts file's columns.
func checkHostName(what, name string) error {
	if name == "" || strings.ContainsAny(name, " \t\r\n#") {
		return fmt.Errorf("%w: %s %q is not a host name", ErrInvalid, what, name)
	}
	return nil
}

// hostsFile is the task's /etc/hosts: the usual loopback entries, then each of its
// addresses with its hostname and that network's aliases.
func hostsFile(hostname string, atts []Attachment) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\n" +
		"ff00::0\tip6-mcastprefix\n" +
		"ff02::1\tip6-allnodes\n" +
		"ff02::2\tip6-allrouters\n")
	for _, att := range atts {
		var names []string
		if hostname != "" {
			names = append(names, hostname)
		}
		for _, a := range att.Aliases {
			if !slices.Contains(names, a) {
				names = append(names, a)
			}
		}
		if len(names) > 0 {
			fmt.Fprintf(&b, "%s\t%s\n", att.Addr.Addr(), strings.Join(names, " "))
		}
	}
	return b.Bytes()
}

const (
	defaultResolvConf = "/etc/resolv.conf"
	// systemdResolvConf lists the upstream servers of systemd-resolved, for a
	// node whose /etc/resolv.conf names none.
	systemdResolvConf = "/run/systemd/resolve/resolv.conf"
)

// DNSConfig is a service's dns, dns_search and dns_opt: the servers its tasks'
// resolver forwards to, in place of the node's, and the search and options lines
// of their resolv.conf.
type DNSConfig struct {
	Servers []netip.Addr
	Search  []string
	Options []string
}

// check keeps the config from breaking the resolv.conf's lines.
func (c DNSConfig) check() error {
	for _, s := range c.Servers {
		if !s.IsValid() {
			return fmt.Errorf("%w: dns server %q is not an IP address", ErrInvalid, s)
		}
	}
	for _, d := range c.Search {
		if err := checkHostName("dns search domain", d); err != nil {
			return err
		}
	}
	for _, o := range c.Options {
		if err := checkHostName("dns option", o); err != nil {
			return err
		}
	}
	return nil
}

// taskResolvConf is the task's /etc/resolv.conf: the embedded resolver, the
// service's search domains (else the node's), and ndots:0, so that a service's
// bare name is asked as it is before any search domain is tried on it, then the
// service's options (an ndots of theirs replaces ours).
func (n *Netstack) taskResolvConf(c DNSConfig) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("nameserver " + dnsListenAddr.Addr().String() + "\n")
	switch {
	case slices.Equal(c.Search, []string{"."}):
		// As with Docker, "." is no search domain at all.
	case len(c.Search) > 0:
		b.WriteString("search " + strings.Join(c.Search, " ") + "\n")
	default:
		conf, err := n.nodeResolvConf()
		if err != nil {
			return nil, err
		}
		for _, l := range conf.search {
			b.WriteString(l + "\n")
		}
	}
	opts := c.Options
	if !slices.ContainsFunc(opts, func(o string) bool { return strings.HasPrefix(o, "ndots:") }) {
		opts = append([]string{"ndots:0"}, opts...)
	}
	b.WriteString("options " + strings.Join(opts, " ") + "\n")
	return b.Bytes(), nil
}

// nodeResolvConf reads the node's resolv.conf, or systemd-resolved's list of
// upstream servers when the node's names none.
func (n *Netstack) nodeResolvConf() (resolvConf, error) {
	conf, err := readResolvConf(n.resolvConf)
	if err != nil {
		return conf, err
	}
	if len(conf.nameservers) == 0 && n.resolvConf == defaultResolvConf {
		if alt, err := readResolvConf(systemdResolvConf); err == nil && len(alt.nameservers) > 0 {
			conf = alt
		}
	}
	return conf, nil
}

type resolvConf struct {
	// nameservers are all the node's: its resolver forwards from the node's
	// namespace, where loopback ones answer too.
	nameservers []netip.Addr
	search      []string // search and domain lines, as they were
}

// readResolvConf reads the nameservers and the search lines of a resolv.conf.
func readResolvConf(path string) (resolvConf, error) {
	var conf resolvConf
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return conf, nil
	}
	if err != nil {
		return conf, fmt.Errorf("read the node's resolv.conf: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "nameserver":
			if addr, err := netip.ParseAddr(fields[1]); err == nil {
				conf.nameservers = append(conf.nameservers, addr)
			}
		case "search", "domain":
			conf.search = append(conf.search, strings.Join(fields, " "))
		}
	}
	return conf, sc.Err()
}

// writeFileIfChanged writes data in place, not by renaming a new file over the old:
// the file is bind-mounted into a running container, which would keep the old one.
func writeFileIfChanged(path string, data []byte) error {
	old, err := os.ReadFile(path)
	if err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
