package ipam

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestAllocateSubnet(t *testing.T) {
	tests := []struct {
		name    string
		pool    string
		size    int
		used    []netip.Prefix
		want    string
		wantErr error
	}{
		{name: "empty pool gives the first subnet", pool: "10.0.0.0/8", size: 24, want: "10.0.0.0/24"},
		{name: "skips used", pool: "10.0.0.0/8", size: 24, used: prefixes("10.0.0.0/24", "10.0.1.0/24"), want: "10.0.2.0/24"},
		{name: "fills a hole", pool: "10.0.0.0/8", size: 24, used: prefixes("10.0.0.0/24", "10.0.2.0/24"), want: "10.0.1.0/24"},
		{name: "order of used does not matter", pool: "10.0.0.0/8", size: 24, used: prefixes("10.0.1.0/24", "10.0.0.0/24"), want: "10.0.2.0/24"},
		{name: "requested larger subnet blocks many", pool: "10.0.0.0/8", size: 24, used: prefixes("10.0.0.0/16"), want: "10.1.0.0/24"},
		{name: "requested smaller subnet blocks its /24", pool: "10.0.0.0/8", size: 24, used: prefixes("10.0.0.128/25"), want: "10.0.1.0/24"},
		{name: "nested used prefixes", pool: "10.0.0.0/8", size: 24, used: prefixes("10.0.0.0/16", "10.0.3.0/24", "10.1.0.0/24"), want: "10.1.1.0/24"},
		{name: "used with host bits is masked", pool: "10.0.0.0/8", size: 24, used: prefixes("10.0.0.7/24"), want: "10.0.1.0/24"},
		{name: "used outside the pool is ignored", pool: "10.0.0.0/8", size: 24, used: prefixes("192.168.0.0/16", "fd00::/64"), want: "10.0.0.0/24"},
		{name: "used covering the pool", pool: "10.0.0.0/16", size: 24, used: prefixes("10.0.0.0/8"), wantErr: ErrPoolExhausted},
		{name: "pool exhausted", pool: "10.0.0.0/23", size: 24, used: prefixes("10.0.0.0/24", "10.0.1.0/24"), wantErr: ErrPoolExhausted},
		{name: "pool at the end of the address space", pool: "255.255.255.0/24", size: 25, used: prefixes("255.255.255.0/25", "255.255.255.128/25"), wantErr: ErrPoolExhausted},
		{name: "pool at the end, one left", pool: "255.255.255.0/24", size: 25, used: prefixes("255.255.255.0/25"), want: "255.255.255.128/25"},
		{name: "other sizes", pool: "172.16.0.0/12", size: 20, used: prefixes("172.16.0.0/24"), want: "172.16.16.0/20"},
		{name: "IPv6 pool", pool: "fd00::/48", size: 64, used: prefixes("fd00::/64", "10.0.0.0/8"), want: "fd00:0:0:1::/64"},
		{name: "size larger than the pool", pool: "10.0.0.0/16", size: 8, wantErr: ErrInvalid},
		{name: "size without room for tasks", pool: "10.0.0.0/16", size: 31, wantErr: ErrInvalid},
		{name: "pool with host bits", pool: "10.0.0.1/8", size: 24, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AllocateSubnet(netip.MustParsePrefix(tt.pool), tt.size, tt.used)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("AllocateSubnet = %v, %v; want error %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != netip.MustParsePrefix(tt.want) {
				t.Fatalf("AllocateSubnet = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestAllocateSubnetInvalidPool(t *testing.T) {
	if _, err := AllocateSubnet(netip.Prefix{}, 24, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("zero pool: err = %v, want ErrInvalid", err)
	}
}

// Allocating one subnet after another must walk the pool in order: the result is what
// a leader replaying the log computes, and it stays fast with many networks.
func TestAllocateSubnetSequence(t *testing.T) {
	pool := netip.MustParsePrefix("10.0.0.0/16")
	var used []netip.Prefix
	for i := range 256 {
		got, err := AllocateSubnet(pool, 24, used)
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		want := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i), 0}), 24)
		if got != want {
			t.Fatalf("allocation %d = %s, want %s", i, got, want)
		}
		used = append(used, got)
	}
	if _, err := AllocateSubnet(pool, 24, used); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("257th allocation: err = %v, want ErrPoolExhausted", err)
	}
}

func TestCheckSubnet(t *testing.T) {
	claims := []Claim{
		{Network: "web_front", Subnet: netip.MustParsePrefix("10.0.1.0/24")},
		{Network: "web_back", Subnet: netip.MustParsePrefix("10.0.2.0/24")},
	}
	tests := []struct {
		name     string
		network  string
		subnet   netip.Prefix
		wantErr  error
		wantText []string
	}{
		{name: "free", network: "db", subnet: netip.MustParsePrefix("10.0.3.0/24")},
		{name: "own claim", network: "web_front", subnet: netip.MustParsePrefix("10.0.1.0/24")},
		{name: "same subnet", network: "db", subnet: netip.MustParsePrefix("10.0.1.0/24"), wantErr: ErrOverlap,
			wantText: []string{`"db"`, "10.0.1.0/24", `"web_front"`}},
		{name: "containing", network: "db", subnet: netip.MustParsePrefix("10.0.0.0/16"), wantErr: ErrOverlap,
			wantText: []string{`"db"`, "10.0.0.0/16", `"web_front"`}},
		{name: "contained", network: "db", subnet: netip.MustParsePrefix("10.0.2.128/25"), wantErr: ErrOverlap,
			wantText: []string{"10.0.2.0/24", `"web_back"`}},
		{name: "host bits", network: "db", subnet: netip.MustParsePrefix("10.0.3.5/24"), wantErr: ErrInvalid,
			wantText: []string{"10.0.3.0/24"}},
		{name: "too small", network: "db", subnet: netip.MustParsePrefix("10.0.3.0/31"), wantErr: ErrInvalid},
		{name: "zero", network: "db", wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckSubnet(tt.network, tt.subnet, claims)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("CheckSubnet = %v, want %v", err, tt.wantErr)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %s", err, s)
				}
			}
		})
	}
}

func TestGateway(t *testing.T) {
	for subnet, want := range map[string]string{
		"10.0.1.0/24":   "10.0.1.1",
		"10.0.1.77/24":  "10.0.1.1",
		"172.20.0.0/16": "172.20.0.1",
		"fd00:1::/64":   "fd00:1::1",
	} {
		if got := Gateway(netip.MustParsePrefix(subnet)); got != netip.MustParseAddr(want) {
			t.Errorf("Gateway(%s) = %s, want %s", subnet, got, want)
		}
	}
}

func addrs(ss ...string) map[netip.Addr]bool {
	out := make(map[netip.Addr]bool, len(ss))
	for _, s := range ss {
		out[netip.MustParseAddr(s)] = true
	}
	return out
}

// TestAllocateAddr: tasks' addresses from the bottom of a subnet (AllocateAddr),
// VIPs' and endpoints' from the top (AllocateReserved, "top" cases).
func TestAllocateAddr(t *testing.T) {
	tests := []struct {
		name    string
		top     bool
		subnet  string
		gateway string
		used    map[netip.Addr]bool
		want    string
		wantErr error
	}{
		{name: "first after gateway", subnet: "10.0.1.0/24", gateway: "10.0.1.1", want: "10.0.1.2"},
		{name: "lowest free", subnet: "10.0.1.0/24", gateway: "10.0.1.1", used: addrs("10.0.1.2", "10.0.1.4"), want: "10.0.1.3"},
		{name: "gateway elsewhere", subnet: "10.0.1.0/24", gateway: "10.0.1.254", want: "10.0.1.1"},
		{name: "skips gateway elsewhere", subnet: "10.0.1.0/24", gateway: "10.0.1.2", used: addrs("10.0.1.1"), want: "10.0.1.3"},
		{name: "last before broadcast", subnet: "10.0.1.0/30", gateway: "10.0.1.1", want: "10.0.1.2"},
		{name: "broadcast is never given", subnet: "10.0.1.0/30", gateway: "10.0.1.1", used: addrs("10.0.1.2"), wantErr: ErrSubnetFull},
		{name: "full /24", subnet: "10.0.1.0/24", gateway: "10.0.1.1", used: func() map[netip.Addr]bool {
			m := map[netip.Addr]bool{}
			for a := netip.MustParseAddr("10.0.1.2"); a != netip.MustParseAddr("10.0.1.255"); a = a.Next() {
				m[a] = true
			}
			return m
		}(), wantErr: ErrSubnetFull},
		{name: "IPv6 has no broadcast", subnet: "fd00::/126", gateway: "fd00::1", used: addrs("fd00::2"), want: "fd00::3"},
		{name: "gateway outside", subnet: "10.0.1.0/24", gateway: "10.0.2.1", wantErr: ErrInvalid},
		{name: "subnet with host bits", subnet: "10.0.1.5/24", gateway: "10.0.1.1", wantErr: ErrInvalid},
		{name: "top: highest before broadcast", top: true, subnet: "10.0.1.0/24", gateway: "10.0.1.1", want: "10.0.1.254"},
		{name: "top: highest free", top: true, subnet: "10.0.1.0/24", gateway: "10.0.1.1", used: addrs("10.0.1.254", "10.0.1.253"), want: "10.0.1.252"},
		{name: "top: skips gateway", top: true, subnet: "10.0.1.0/24", gateway: "10.0.1.254", want: "10.0.1.253"},
		{name: "top: meets the tasks", top: true, subnet: "10.0.1.0/30", gateway: "10.0.1.1", want: "10.0.1.2"},
		{name: "top: full /30", top: true, subnet: "10.0.1.0/30", gateway: "10.0.1.1", used: addrs("10.0.1.2"), wantErr: ErrSubnetFull},
		{name: "top: IPv6 has no broadcast", top: true, subnet: "fd00::/126", gateway: "fd00::1", want: "fd00::3"},
		{name: "top: ingress subnet", top: true, subnet: IngressSubnet.String(), gateway: "10.255.0.1", used: addrs("10.255.63.254"), want: "10.255.63.253"},
		{name: "top: gateway outside", top: true, subnet: "10.0.1.0/24", gateway: "10.0.2.1", wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alloc, fn := AllocateAddr, "AllocateAddr"
			if tt.top {
				alloc, fn = AllocateReserved, "AllocateReserved"
			}
			got, err := alloc(netip.MustParsePrefix(tt.subnet), netip.MustParseAddr(tt.gateway), func(a netip.Addr) bool { return tt.used[a] })
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("%s = %v, %v; want error %v", fn, got, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.subnet) && !strings.Contains(err.Error(), tt.gateway) {
					t.Errorf("error %q names neither the subnet nor the gateway", err)
				}
				return
			}
			if err != nil || got != netip.MustParseAddr(tt.want) {
				t.Fatalf("%s = %v, %v; want %s", fn, got, err, tt.want)
			}
		})
	}
}

func TestTopFree(t *testing.T) {
	subnet, gw := netip.MustParsePrefix("10.0.1.0/29"), netip.MustParseAddr("10.0.1.6")
	taken := addrs("10.0.1.5", "10.0.1.3")
	for n, want := range map[int][]string{1: {"10.0.1.4"}, 2: {"10.0.1.4", "10.0.1.2"}, 9: {"10.0.1.4", "10.0.1.2", "10.0.1.1"}} {
		got, err := TopFree(subnet, gw, func(a netip.Addr) bool { return taken[a] }, n)
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, a := range got {
			s = append(s, a.String())
		}
		if !slices.Equal(s, want) {
			t.Errorf("TopFree(%d) = %v, want %v", n, s, want)
		}
	}
	if _, err := TopFree(subnet, gw, func(netip.Addr) bool { return true }, 3); !errors.Is(err, ErrSubnetFull) {
		t.Errorf("TopFree of a full subnet: %v", err)
	}
}

// TestIngressSubnetInDefaultPool: the ingress subnet lies in the default pool, so
// the allocation of stack subnets must count it as taken to skip it.
func TestIngressSubnetInDefaultPool(t *testing.T) {
	if !DefaultPool.Overlaps(IngressSubnet) {
		t.Fatalf("ingress subnet %s is outside the default pool %s: the reservation is useless", IngressSubnet, DefaultPool)
	}
	pool, full := netip.MustParsePrefix("10.255.0.0/17"), netip.MustParsePrefix("10.255.64.0/18")
	got, err := AllocateSubnet(pool, 24, []netip.Prefix{full})
	if err != nil || got != netip.MustParsePrefix("10.255.0.0/24") {
		t.Fatalf("AllocateSubnet without the reservation = %v, %v; want 10.255.0.0/24", got, err)
	}
	got, err = AllocateSubnet(pool, 24, []netip.Prefix{full, IngressSubnet})
	if !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("AllocateSubnet with the ingress subnet taken = %v, %v; want the pool exhausted", got, err)
	}
}

func TestMAC(t *testing.T) {
	for addr, want := range map[string]string{
		"10.0.1.2":      "02:42:0a:00:01:02",
		"172.17.0.255":  "02:42:ac:11:00:ff",
		"fd00::a0b:c0d": "02:42:0a:0b:0c:0d",
	} {
		if got := MAC(netip.MustParseAddr(addr)).String(); got != want {
			t.Errorf("MAC(%s) = %s, want %s", addr, got, want)
		}
	}
}
