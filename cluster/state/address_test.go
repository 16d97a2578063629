package state

import (
	"encoding/json"
	"github.com/berthd/berth/cluster/model"
	"net/netip"
	"strings"
	"testing"
)

// TestReservedAddrs: VIPs and nodes' endpoints are listed by network, follow their
// rows' changes, and are found again in a store restored from a snapshot (the index
// is rebuilt, not stored).
func TestReservedAddrs(t *testing.T) {
	s := newStore(t)
	commit(t, s, 1, func(tx *WriteTxn) error {
		if err := tx.UpsertService(&model.Service{ID: "s1", Name: "web_api", Stack: "web",
			Endpoint: model.Endpoint{VIPs: []model.VIP{{Network: "n1", Addr: "10.0.0.254/24"}, {Network: "ing", Addr: "10.255.255.253/16"}}}}); err != nil {
			return err
		}
		return tx.UpsertNode(&model.Node{ID: "node1", Hostname: "one", Role: model.RoleWorker, Availability: model.AvailabilityActive,
			Status: model.NodeStatus{State: model.NodeReady}, Networks: []model.Attachment{{Network: "ing", Addr: "10.255.255.254/16"}}})
	})
	check := func(s *Store, when string, want map[[2]string]string) {
		t.Helper()
		for k, w := range want {
			held, err := s.ReadTxn().ReservedAddrs(k[0])
			if err != nil {
				t.Fatal(err)
			}
			if got := held[netip.MustParsePrefix(k[1]).Addr()]; got != w {
				t.Errorf("%s: holder of %s on %s = %q; want %q", when, k[1], k[0], got, w)
			}
		}
	}
	check(s, "written", map[[2]string]string{
		{"n1", "10.0.0.254/24"}: "service web_api", {"ing", "10.255.255.253/32"}: "service web_api",
		{"ing", "10.255.255.254/16"}: "node one", {"n1", "10.0.0.2/24"}: "", {"n2", "10.0.0.254/24"}: "", {"n", "10.0.0.254/24"}: "",
	})
	check(roundTrip(t, s), "restored", map[[2]string]string{{"n1", "10.0.0.254/24"}: "service web_api", {"ing", "10.255.255.254/16"}: "node one"})
	commit(t, s, 2, func(tx *WriteTxn) error {
		if err := tx.UpsertService(&model.Service{ID: "s1", Name: "web_api", Stack: "web"}); err != nil {
			return err
		}
		return tx.DeleteNode("node1")
	})
	check(s, "released", map[[2]string]string{{"n1", "10.0.0.254/24"}: "", {"ing", "10.255.255.254/16"}: ""})
}

// TestServiceJSONShowsVIPs: `service inspect` prints the service row as JSON; its
// VIPs are in it, under endpoint.vips.
func TestServiceJSONShowsVIPs(t *testing.T) {
	b, err := json.Marshal(&model.Service{ID: "s1", Name: "web_api", Endpoint: model.Endpoint{VIPs: []model.VIP{{Network: "n1", Addr: "10.0.0.254/24"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `"endpoint":{"vips":[{"network":"n1","addr":"10.0.0.254/24"}]}`; !strings.Contains(string(b), want) {
		t.Errorf("service JSON %s lacks %s", b, want)
	}
}
