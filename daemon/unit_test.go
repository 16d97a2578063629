package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

func TestAdvertiseAddr(t *testing.T) {
	for _, tc := range []struct{ flag, listen, remote, want, err string }{
		{"", "127.0.0.1:4270", "", "127.0.0.1:4270", ""},
		{"10.0.0.5", "0.0.0.0:4270", "", "10.0.0.5:4270", ""},
		{"10.0.0.5:5000", "0.0.0.0:4270", "", "10.0.0.5:5000", ""},
		{"manager-1.example.com", "0.0.0.0:4270", "", "manager-1.example.com:4270", ""},
		{"0.0.0.0", "0.0.0.0:4270", "", "", "unspecified"},
		{"", "0.0.0.0:4271", "127.0.0.1:4270", "127.0.0.1:4271", ""},
		{"", "nonsense", "", "", "listen address"},
	} {
		got, err := advertiseAddr(tc.flag, tc.listen, tc.remote)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("advertiseAddr(%q, %q, %q) = %q, %v; want an error about %s", tc.flag, tc.listen, tc.remote, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("advertiseAddr(%q, %q, %q) = %q, %v; want %s", tc.flag, tc.listen, tc.remote, got, err, tc.want)
		}
	}
}

func TestTrackerGivesANewLeaderAGracePeriod(t *testing.T) {
	tr := newTracker()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr.beat("a", t0) // not leading: ignored
	tr.lead(t0.Add(time.Minute))
	if got := tr.last("a"); !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("unseen node counts from %v, want the start of leadership", got)
	}
	tr.beat("a", t0.Add(2*time.Minute))
	tr.lead(t0.Add(3 * time.Minute)) // still leading: nothing reset
	if got := tr.last("a"); !got.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("last heartbeat %v, want %v", got, t0.Add(2*time.Minute))
	}
	tr.follow()
	tr.lead(t0.Add(10 * time.Minute))
	if got := tr.last("a"); !got.Equal(t0.Add(10 * time.Minute)) {
		t.Errorf("after a new term, last heartbeat %v, want the new start", got)
	}
}

// TestDownDeadlineWithDefaults: with the default period, a node is overdue exactly 5 s
// after its last heartbeat (a node never heard from, after the start of leadership),
// and the leader's next wake-up is the earliest deadline still ahead.
func TestDownDeadlineWithDefaults(t *testing.T) {
	period := (&Node{}).heartbeatPeriod(nil)
	silence := api.DownAfter * period
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	nodes := []*model.Node{
		{ID: "a", Status: model.NodeStatus{State: model.NodeReady}},
		{ID: "b", Status: model.NodeStatus{State: model.NodeReady}},
		{ID: "never-beat", Status: model.NodeStatus{State: model.NodeUnknown}},
		{ID: "down", Status: model.NodeStatus{State: model.NodeDown}},
	}
	tr := newTracker()
	tr.lead(t0)
	tr.beat("a", t0)
	tr.beat("b", t0.Add(2*time.Second))
	tests := []struct {
		at       time.Duration // after t0
		beatB    bool          // b beats at this time first
		wantLate []string
		wantNext time.Duration
	}{
		{at: 4900 * time.Millisecond, wantNext: 5 * time.Second},
		{at: 5 * time.Second, wantLate: []string{"a", "never-beat"}, wantNext: 7 * time.Second},
		{at: 6 * time.Second, beatB: true, wantLate: []string{"a", "never-beat"}, wantNext: 11 * time.Second},
		{at: 11 * time.Second, wantLate: []string{"a", "b", "never-beat"}},
	}
	for _, tt := range tests {
		now := t0.Add(tt.at)
		if tt.beatB {
			tr.beat("b", now)
		}
		late, next := tr.overdue(nodes, now, silence)
		var ids []string
		for _, nd := range late {
			ids = append(ids, nd.ID)
		}
		var wantNext time.Time
		if tt.wantNext > 0 {
			wantNext = t0.Add(tt.wantNext)
		}
		if strings.Join(ids, ",") != strings.Join(tt.wantLate, ",") || !next.Equal(wantNext) {
			t.Errorf("at +%v (period %v, down after %v of silence): overdue %v, next %v; want %v, %v",
				tt.at, period, silence, ids, next, tt.wantLate, wantNext)
		}
	}
}

// TestSettingsPeriod: a cluster made with the old 5 s default, which nothing else
// could have set, gets the new default.
func TestSettingsPeriod(t *testing.T) {
	tests := []struct {
		setting time.Duration
		want    time.Duration
	}{
		{0, time.Second},
		{5 * time.Second, time.Second},
		{2 * time.Second, 2 * time.Second},
		{500 * time.Millisecond, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := settingsPeriod(model.Settings{HeartbeatPeriod: spec.Duration(tt.setting)}); got != tt.want {
			t.Errorf("settingsPeriod(%v) = %v; want %v", tt.setting, got, tt.want)
		}
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := newID()
		if len(id) != model.IDLength || strings.Trim(id, "0123456789abcdefghijklmnopqrstuvwxyz") != "" || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}
