package netlab

import (
	"net/netip"
	"testing"
)

func TestPickSubnet(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		name  string
		start int
		used  []string
		want  string
	}{
		{"first", 0, nil, "198.18.0.0/24"},
		{"second /16", 256 + 7, nil, "198.19.7.0/24"},
		{"skips used", 5, []string{"198.18.5.0/24", "198.18.6.0/24"}, "198.18.7.0/24"},
		{"wraps", 511, []string{"198.19.255.0/24"}, "198.18.0.0/24"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			used := map[netip.Prefix]bool{}
			for _, u := range tc.used {
				used[p(u)] = true
			}
			got, err := pickSubnet(tc.start, used)
			if err != nil || got != p(tc.want) {
				t.Errorf("pickSubnet(%d) = %v, %v; want %s", tc.start, got, err, tc.want)
			}
		})
	}
	all := map[netip.Prefix]bool{}
	for i := range 512 {
		s, _ := pickSubnet(i, all)
		all[s] = true
	}
	if s, err := pickSubnet(0, all); err == nil {
		t.Errorf("pickSubnet with every /24 used = %v, want an error", s)
	}
}

func TestParseStatStart(t *testing.T) {
	for _, tc := range []struct {
		stat string
		want uint64
		err  bool
	}{
		{"1234 (berth) S 1 1234 1234 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 0 0", 98765, false},
		{"1234 (a) b (c) S 1 1234 1234 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 42 0", 42, false},
		{"1234 (short) S 1", 0, true},
		{"garbage", 0, true},
	} {
		got, err := parseStatStart(tc.stat)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseStatStart(%q) = %d, %v; want %d (error %v)", tc.stat, got, err, tc.want, tc.err)
		}
	}
}

func TestUnescapeMountPath(t *testing.T) {
	if got := unescapeMountPath(`/tmp/a\040b/c\134d`); got != `/tmp/a b/c\d` {
		t.Errorf("unescapeMountPath = %q", got)
	}
}
