package dns

import (
	"net/netip"
	"slices"
	"testing"
)

// testServices are a VIP service on two networks with an alias on one, a DNSRR
// service, and a VIP service whose tasks are all starting.
func testServices() ([]Service, []Endpoint) {
	a := netip.MustParseAddr
	services := []Service{
		{ID: "s-web", Name: "shop_web", ShortName: "web",
			VIPs:    map[string]netip.Addr{"front": a("10.0.1.2"), "back": a("10.0.2.2")},
			Aliases: map[string][]string{"back": {"www", "Shop-Web-Alias"}}},
		{ID: "s-db", Name: "shop_db", ShortName: "db", DNSRR: true},
		{ID: "s-cache", Name: "shop_cache", ShortName: "cache", VIPs: map[string]netip.Addr{"back": a("10.0.2.3")}},
	}
	endpoints := []Endpoint{
		{Network: "front", ServiceID: "s-web", Addr: a("10.0.1.10"), Ready: true},
		{Network: "back", ServiceID: "s-web", Addr: a("10.0.2.10"), Ready: true},
		{Network: "front", ServiceID: "s-web", Addr: a("10.0.1.11"), Ready: true},
		{Network: "back", ServiceID: "s-web", Addr: a("10.0.2.11"), Ready: true},
		{Network: "front", ServiceID: "s-web", Addr: a("10.0.1.12")}, // starting
		{Network: "back", ServiceID: "s-db", Addr: a("10.0.2.20"), Ready: true},
		{Network: "back", ServiceID: "s-db", Addr: a("10.0.2.21")}, // unhealthy
		{Network: "back", ServiceID: "s-cache", Addr: a("10.0.2.30")},
		{Network: "front", Addr: a("10.0.1.250"), Ready: true}, // a node's own endpoint
	}
	return services, endpoints
}

func TestIndexLookup(t *testing.T) {
	ix := Build(testServices())
	tests := []struct {
		name     string
		networks []string
		want     []string
		ttl      uint32
		found    bool
	}{
		{"web", []string{"front"}, []string{"10.0.1.2"}, vipTTL, true},
		{"web", []string{"back"}, []string{"10.0.2.2"}, vipTTL, true},
		{"web", []string{"front", "back"}, []string{"10.0.1.2", "10.0.2.2"}, vipTTL, true},
		{"shop_web.", []string{"front"}, []string{"10.0.1.2"}, vipTTL, true},
		{"WEB.", []string{"front"}, []string{"10.0.1.2"}, vipTTL, true},
		{"www", []string{"back"}, []string{"10.0.2.2"}, vipTTL, true},
		{"shop-web-alias", []string{"back"}, []string{"10.0.2.2"}, vipTTL, true},
		// Aliases are per network.
		{"www", []string{"front"}, nil, 0, false},
		{"tasks.web", []string{"front"}, []string{"10.0.1.10", "10.0.1.11"}, taskTTL, true},
		{"tasks.shop_web", []string{"back"}, []string{"10.0.2.10", "10.0.2.11"}, taskTTL, true},
		{"db", []string{"back"}, []string{"10.0.2.20"}, taskTTL, true},
		{"tasks.db", []string{"back"}, []string{"10.0.2.20"}, taskTTL, true},
		// Scoped: a task on front shares no network with db.
		{"db", []string{"front"}, nil, 0, false},
		// A VIP answers with no ready task; tasks.cache is ours, with no address.
		{"cache", []string{"back"}, []string{"10.0.2.3"}, vipTTL, true},
		{"tasks.cache", []string{"back"}, nil, taskTTL, true},
		{"web.example.com", []string{"front"}, nil, 0, false},
		{"tasks.", []string{"front"}, nil, 0, false},
		{"", []string{"front"}, nil, 0, false},
		{"web", nil, nil, 0, false},
	}
	for _, tt := range tests {
		addrs, ttl, found := ix.Lookup(tt.name, tt.networks)
		var got []string
		for _, a := range addrs {
			got = append(got, a.String())
		}
		if !slices.Equal(got, tt.want) || found != tt.found || (found && ttl != tt.ttl) {
			t.Errorf("Lookup(%q, %v) = %v, ttl %d, found %v; want %v, ttl %d, found %v",
				tt.name, tt.networks, got, ttl, found, tt.want, tt.ttl, tt.found)
		}
	}
}

// TestIndexSharedAlias: two services with one alias on a network both answer.
func TestIndexSharedAlias(t *testing.T) {
	a := netip.MustParseAddr
	ix := Build([]Service{
		{ID: "1", Name: "a_x", ShortName: "x", VIPs: map[string]netip.Addr{"n": a("10.0.0.2")}, Aliases: map[string][]string{"n": {"api"}}},
		{ID: "2", Name: "a_y", ShortName: "y", VIPs: map[string]netip.Addr{"n": a("10.0.0.3")}, Aliases: map[string][]string{"n": {"api"}}},
	}, nil)
	addrs, _, found := ix.Lookup("api", []string{"n"})
	if !found || len(addrs) != 2 {
		t.Fatalf("Lookup(api) = %v, %v; want both VIPs", addrs, found)
	}
}

func TestNilIndex(t *testing.T) {
	var ix *Index
	if _, _, found := ix.Lookup("web", []string{"n"}); found {
		t.Fatal("a nil index (no View yet) found a name")
	}
}
