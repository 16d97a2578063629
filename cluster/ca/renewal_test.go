package ca

import (
	"testing"
	"time"
)

func TestNeedsRenewal(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	root := mustRoot(t, "c1", WithClock(func() time.Time { return t0 }))
	hour := mustNode(t, root, "n1", RoleWorker, time.Hour).cert
	minute := mustNode(t, root, "n2", RoleWorker, time.Minute).cert
	for _, tc := range []struct {
		name string
		at   time.Duration
		want bool
	}{
		{"fresh", 0, false},
		{"half its life", 30 * time.Minute, false},
		{"just before two thirds", 40*time.Minute - time.Second, false},
		{"two thirds of its life", 40 * time.Minute, true},
		{"expired", 2 * time.Hour, true},
		{"before NotBefore", -2 * time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NeedsRenewal(hour, t0.Add(tc.at)); got != tc.want {
				t.Fatalf("NeedsRenewal at +%s = %t, want %t", tc.at, got, tc.want)
			}
		})
	}
	// The backdated hour is not part of the lifetime: a one-minute certificate
	// renews at 40 s, before it expires.
	if got, want := RenewAt(minute), t0.Add(40*time.Second); !got.Equal(want) {
		t.Fatalf("RenewAt of a one-minute certificate = %s, want %s", got, want)
	}
	if !NeedsRenewal(nil, t0) {
		t.Fatal("no certificate does not need one")
	}
}
