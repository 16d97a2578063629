package netstack

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berthd/berth/netstack/ipam"
)

func testNetwork(id, name, subnet string) Network {
	p := netip.MustParsePrefix(subnet)
	return Network{ID: id, Name: name, Subnet: p, Gateway: ipam.Gateway(p)}
}

func attach(nw Network, addr string, aliases ...string) Attachment {
	return Attachment{Network: nw, Addr: netip.PrefixFrom(netip.MustParseAddr(addr), nw.Subnet.Bits()), Aliases: aliases}
}

func TestNames(t *testing.T) {
	for _, id := range []string{"0123456789abcdefghijklmno", "net1", "a/b c", strings.Repeat("x", 200)} {
		name := bridgeName(id)
		if len(name) > 15 || !strings.HasPrefix(name, bridgePrefix) {
			t.Errorf("bridgeName(%q) = %q: not a berth interface name of at most 15 characters", id, name)
		}
	}
	if got := bridgeName("0123456789abcdefghijklmno"); got != "bb-0123456789ab" {
		t.Errorf("bridgeName keeps the ID's prefix: got %q", got)
	}
	if bridgeName("net1") == bridgeName("net2") {
		t.Error("short network IDs get the same bridge")
	}
	if got := taskVethPrefix("task") + "999"; len(got) > 15 || !isTaskVethName(got) {
		t.Errorf("veth name %q is longer than 15 characters or not recognized", got)
	}
	for _, name := range []string{"bv", "bv0123456789", "bv0123456789x", "bvg123456789a0", "br-0123456789a", "bb-0123456789ab"} {
		if isTaskVethName(name) {
			t.Errorf("isTaskVethName(%q) = true", name)
		}
	}
}

func TestSetupRejectsBeforeTouchingAnything(t *testing.T) {
	n := &Netstack{root: filepath.Join(t.TempDir(), "never-made"), logger: slog.New(slog.DiscardHandler)}
	front := testNetwork("front", "web_front", "10.0.1.0/24")
	for name, call := range map[string]func() error{
		"task ID":  func() error { _, err := n.Setup(t.Context(), "../x", "h", nil, nil); return err },
		"hostname": func() error { _, err := n.Setup(t.Context(), "t1", "a b", nil, nil); return err },
		"address": func() error {
			_, err := n.Setup(t.Context(), "t1", "h", []Attachment{attach(front, "10.0.9.9")}, nil)
			return err
		},
		"port": func() error {
			_, err := n.Setup(t.Context(), "t1", "h", nil, []PortMapping{{Protocol: "tcp", Published: 80, Target: 80}})
			return err
		},
		"teardown": func() error { return n.Teardown(t.Context(), "a/b") },
	} {
		err := call()
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := os.Stat(n.root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a rejected Setup made %s", n.root)
	}
}

func TestCheckTaskID(t *testing.T) {
	for _, id := range []string{"", ".", "..", "a/b", "a b", strings.Repeat("x", 129)} {
		if err := checkTaskID(id); !errors.Is(err, ErrInvalid) {
			t.Errorf("checkTaskID(%q) = %v, want ErrInvalid", id, err)
		}
	}
	for _, id := range []string{"abc", "0123456789abcdefghijklmno", "web_api.1"} {
		if err := checkTaskID(id); err != nil {
			t.Errorf("checkTaskID(%q) = %v", id, err)
		}
	}
}

func TestNormalizeAttachments(t *testing.T) {
	front := testNetwork("front", "web_front", "10.0.1.0/24")
	t.Run("derives the MAC", func(t *testing.T) {
		got, err := normalizeAttachments([]Attachment{attach(front, "10.0.1.7")})
		if err != nil {
			t.Fatal(err)
		}
		if got[0].MAC.String() != "02:42:0a:00:01:07" {
			t.Errorf("MAC = %s", got[0].MAC)
		}
	})
	bad := map[string][]Attachment{
		"no network ID":        {attach(Network{Name: "x", Subnet: front.Subnet, Gateway: front.Gateway}, "10.0.1.7")},
		"attached twice":       {attach(front, "10.0.1.7"), attach(front, "10.0.1.8")},
		"outside the subnet":   {attach(front, "10.0.2.7")},
		"the gateway":          {attach(front, "10.0.1.1")},
		"wrong prefix length":  {{Network: front, Addr: netip.MustParsePrefix("10.0.1.7/16")}},
		"gateway outside":      {attach(Network{ID: "x", Name: "x", Subnet: front.Subnet, Gateway: netip.MustParseAddr("10.9.9.1")}, "10.0.1.7")},
		"alias with a space":   {attach(front, "10.0.1.7", "a b")},
		"short MAC":            {{Network: front, Addr: netip.MustParsePrefix("10.0.1.7/24"), MAC: []byte{1, 2}}},
		"subnet with hostbits": {attach(Network{ID: "x", Name: "x", Subnet: netip.MustParsePrefix("10.0.1.5/24"), Gateway: front.Gateway}, "10.0.1.7")},
	}
	for name, atts := range bad {
		if _, err := normalizeAttachments(atts); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestPortTarget(t *testing.T) {
	front := testNetwork("front", "web_front", "10.0.1.0/24")
	internal := testNetwork("back", "web_back", "10.0.2.0/24")
	internal.Internal = true
	atts := []Attachment{attach(internal, "10.0.2.5"), attach(front, "10.0.1.5")}
	tcp := PortMapping{Protocol: "tcp", Published: 8080, Target: 80}

	v6 := PortMapping{Protocol: "udp", HostIP: netip.MustParseAddr("fd00::1"), Published: 5353, Target: 53}
	v4 := PortMapping{Protocol: "tcp", HostIP: netip.MustParseAddr("::ffff:192.0.2.1"), Published: 8081, Target: 81}
	all6 := PortMapping{Protocol: "tcp", HostIP: netip.IPv6Unspecified(), Published: 9090, Target: 90}
	rules, relays, err := portTarget(atts, []PortMapping{tcp, tcp, {Protocol: "udp", HostIP: netip.IPv4Unspecified(), Published: 53, Target: 53}, v6, v4, all6})
	if err != nil {
		t.Fatal(err)
	}
	to := netip.MustParseAddr("10.0.1.5")
	wantRules := []dnat{
		{port: tcp, to: to},
		{port: PortMapping{Protocol: "udp", Published: 53, Target: 53}, to: to},
		{port: PortMapping{Protocol: "tcp", HostIP: netip.MustParseAddr("192.0.2.1"), Published: 8081, Target: 81}, to: to},
	}
	if !slices.Equal(rules, wantRules) {
		t.Errorf("portTarget rules = %+v, want %+v (first non-internal network, duplicates dropped, 0.0.0.0 is all addresses, IPv4-mapped is IPv4)", rules, wantRules)
	}
	wantRelays := []relaySpec{
		{Protocol: "tcp", Listen: netip.MustParseAddrPort("127.0.0.1:8080"), To: netip.MustParseAddrPort("10.0.1.5:80")},
		{Protocol: "tcp", Listen: netip.MustParseAddrPort("[::]:8080"), To: netip.MustParseAddrPort("10.0.1.5:80")},
		{Protocol: "udp", Listen: netip.MustParseAddrPort("127.0.0.1:53"), To: netip.MustParseAddrPort("10.0.1.5:53")},
		{Protocol: "udp", Listen: netip.MustParseAddrPort("[fd00::1]:5353"), To: netip.MustParseAddrPort("10.0.1.5:53")},
		{Protocol: "tcp", Listen: netip.MustParseAddrPort("[::]:9090"), To: netip.MustParseAddrPort("10.0.1.5:90")},
	}
	if !slices.Equal(relays, wantRelays) {
		t.Errorf("portTarget relays = %+v, want %+v (IPv6 for no host IP, an IPv6 one or ::; 127.0.0.1 for no host IP or 0.0.0.0; none for an IPv4 address)", relays, wantRelays)
	}

	bad := map[string]struct {
		atts  []Attachment
		ports []PortMapping
	}{
		"only internal":  {atts[:1], []PortMapping{tcp}},
		"no network":     {nil, []PortMapping{tcp}},
		"sctp":           {atts, []PortMapping{{Protocol: "sctp", Published: 1, Target: 1}}},
		"no target":      {atts, []PortMapping{{Protocol: "tcp", Published: 1}}},
		"no published":   {atts, []PortMapping{{Protocol: "tcp", Target: 1}}},
		"loopback host":  {atts, []PortMapping{{Protocol: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), Published: 1, Target: 1}}},
		"IPv6 loopback":  {atts, []PortMapping{{Protocol: "tcp", HostIP: netip.IPv6Loopback(), Published: 1, Target: 1}}},
		"IPv6 task addr": {[]Attachment{attach(testNetwork("v6", "v6", "fd00::/64"), "fd00::5")}, []PortMapping{tcp}},
	}
	for name, tt := range bad {
		if _, _, err := portTarget(tt.atts, tt.ports); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestHostsFile(t *testing.T) {
	front := testNetwork("front", "web_front", "10.0.1.0/24")
	back := testNetwork("back", "web_back", "10.0.2.0/24")
	got := string(hostsFile("api-1", []Attachment{attach(front, "10.0.1.5", "api", "api-1"), attach(back, "10.0.2.9")}))
	for _, line := range []string{"127.0.0.1\tlocalhost\n", "::1\tlocalhost ip6-localhost ip6-loopback\n", "10.0.1.5\tapi-1 api\n", "10.0.2.9\tapi-1\n"} {
		if !strings.Contains(got, line) {
			t.Errorf("hosts file lacks %q:\n%s", line, got)
		}
	}
	if got := string(hostsFile("", []Attachment{attach(back, "10.0.2.9")})); strings.Contains(got, "10.0.2.9") {
		t.Errorf("a line without names:\n%s", got)
	}
}

func TestResolvConf(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(path, []byte("# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.53\n"+
		"search example.com corp\noptions edns0 trust-ad\nbogus\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := &Netstack{resolvConf: path, logger: slog.New(slog.DiscardHandler)}
	tests := []struct {
		name string
		conf DNSConfig
		want string
	}{
		{"the node's search", DNSConfig{}, "nameserver 127.0.0.11\nsearch example.com corp\noptions ndots:0\n"},
		{"the service's", DNSConfig{Search: []string{"svc.example"}, Options: []string{"edns0", "timeout:2"}},
			"nameserver 127.0.0.11\nsearch svc.example\noptions ndots:0 edns0 timeout:2\n"},
		{"the service's ndots", DNSConfig{Options: []string{"ndots:3"}}, "nameserver 127.0.0.11\nsearch example.com corp\noptions ndots:3\n"},
		{"no search at all", DNSConfig{Search: []string{"."}}, "nameserver 127.0.0.11\noptions ndots:0\n"},
	}
	for _, tt := range tests {
		got, err := n.taskResolvConf(tt.conf)
		if err != nil || string(got) != tt.want {
			t.Errorf("%s: resolv.conf =\n%s(%v)\nwant\n%s", tt.name, got, err, tt.want)
		}
	}
	up, err := n.upstreams("no-such-task")
	if err != nil || fmt.Sprint(up) != "[127.0.0.53:53 192.0.2.53:53]" {
		t.Errorf("the node's upstreams = %v, %v; want both nameservers, loopback too", up, err)
	}

	n.resolvConf = filepath.Join(dir, "missing")
	if got, err := n.taskResolvConf(DNSConfig{}); err != nil || string(got) != "nameserver 127.0.0.11\noptions ndots:0\n" {
		t.Errorf("missing host resolv.conf: %q, %v", got, err)
	}
}

func TestDNSConfigCheck(t *testing.T) {
	bad := []DNSConfig{
		{Servers: []netip.Addr{{}}},
		{Search: []string{"a b"}},
		{Options: []string{"ndots:1 x"}},
		{Options: []string{""}},
	}
	for _, c := range bad {
		if err := c.check(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: check = %v, want ErrInvalid", c, err)
		}
	}
	if err := (DNSConfig{Servers: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, Search: []string{"example.com"}, Options: []string{"ndots:2"}}).check(); err != nil {
		t.Errorf("a good config: %v", err)
	}
}

func TestNewChecksOptions(t *testing.T) {
	if _, err := New(t.Context()); err == nil {
		t.Fatal("New without WithRoot succeeded")
	}
	if _, err := New(t.Context(), WithRoot(t.TempDir()), WithHostNetNS(filepath.Join(t.TempDir(), "missing"))); err == nil {
		t.Fatal("New with a missing host namespace succeeded")
	}
}

func TestRelaySpecOverlaps(t *testing.T) {
	relay := func(proto, listen string) relaySpec {
		return relaySpec{Protocol: proto, Listen: netip.MustParseAddrPort(listen), To: netip.MustParseAddrPort("10.0.1.5:80")}
	}
	tests := []struct {
		a, b relaySpec
		want bool
	}{
		{relay("tcp", "[::]:8080"), relay("tcp", "[::]:8080"), true},
		{relay("tcp", "[::]:8080"), relay("tcp", "[fd00::1]:8080"), true},
		{relay("tcp", "[fd00::2]:8080"), relay("tcp", "[fd00::1]:8080"), false},
		{relay("tcp", "127.0.0.1:8080"), relay("tcp", "127.0.0.1:8080"), true},
		{relay("tcp", "127.0.0.1:8080"), relay("tcp", "[::]:8080"), false},
		{relay("tcp", "[::]:8080"), relay("udp", "[::]:8080"), false},
		{relay("tcp", "[::]:8080"), relay("tcp", "[::]:8081"), false},
	}
	for _, tt := range tests {
		if got := tt.a.overlaps(tt.b); got != tt.want {
			t.Errorf("%v overlaps %v = %v, want %v", tt.a.Listen, tt.b.Listen, got, tt.want)
		}
		if got := tt.b.overlaps(tt.a); got != tt.want {
			t.Errorf("%v overlaps %v = %v, want %v", tt.b.Listen, tt.a.Listen, got, tt.want)
		}
	}
}
