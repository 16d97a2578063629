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
	// systemdResolvConf lists the upstream servers of systemd-resolved, whose stub
	// at 127.0.0.53 a task cannot reach from its namespace.
	systemdResolvConf = "/run/systemd/resolve/resolv.conf"
)

// taskResolvConf is the task's /etc/resolv.conf. For now it sends tasks to the
// node's own nameservers; the embedded DNS server will put its address here.
func (n *Netstack) taskResolvConf() ([]byte, error) {
	conf, err := readResolvConf(n.resolvConf)
	if err != nil {
		return nil, err
	}
	if len(conf.nameservers) == 0 && n.resolvConf == defaultResolvConf {
		if alt, err := readResolvConf(systemdResolvConf); err == nil && len(alt.nameservers) > 0 {
			conf = alt
		}
	}
	if len(conf.nameservers) == 0 {
		n.logger.Warn("no nameserver for tasks: the node's are all on loopback or none is configured", "resolv_conf", n.resolvConf)
	}
	var b bytes.Buffer
	for _, ns := range conf.nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	for _, l := range conf.other {
		b.WriteString(l + "\n")
	}
	return b.Bytes(), nil
}

type resolvConf struct {
	nameservers []netip.Addr
	other       []string // search, domain and options lines, as they were
}

// readResolvConf reads the nameservers a task can use (not loopback ones, which
// would be the task's own loopback) and the lines that still apply in a task.
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
			// A zone (fe80::1%eth0) names an interface of the node.
			addr, err := netip.ParseAddr(fields[1])
			if err == nil && !addr.IsLoopback() && addr.Zone() == "" {
				conf.nameservers = append(conf.nameservers, addr)
			}
		case "search", "domain", "options":
			conf.other = append(conf.other, strings.Join(fields, " "))
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
