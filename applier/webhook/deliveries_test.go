package webhook

import (
	"fmt"
	"testing"
	"time"
)

// TestDeliveriesForgetAfterTTLAndCapacity: a delivery is a replay within its window, not
// after it, and the oldest goes first when the window is full.
func TestDeliveriesForgetAfterTTLAndCapacity(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	key := func(i int) deliveryKey { return keyOf("stacks", GitHub, fmt.Sprint("id-", i)) }
	type step struct {
		key    int
		at     time.Duration // after t0
		replay bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"replay within the window, not extended by it", []step{
			{1, 0, false}, {1, 59 * time.Minute, true}, {1, time.Hour, false}, {1, time.Hour + time.Minute, true}}},
		{"oldest goes when full", []step{
			{1, 0, false}, {2, time.Second, false}, {3, 2 * time.Second, false},
			{4, 3 * time.Second, false}, // the window holds 3: id 1 goes
			{2, 4 * time.Second, true}, {1, 5 * time.Second, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDeliveries(3, time.Hour)
			for i, s := range tt.steps {
				if _, replay := d.seen(key(s.key), t0.Add(s.at)); replay != s.replay {
					t.Errorf("step %d: delivery id-%d at +%v: replay = %v; want %v", i, s.key, s.at, replay, s.replay)
				}
			}
			if n := d.order.Len(); n > 3 || n != len(d.byKey) {
				t.Errorf("window holds %d entries (%d keys); want at most 3, one key each", n, len(d.byKey))
			}
		})
	}
}
