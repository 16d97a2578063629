package main

import "testing"

func TestLogTail(t *testing.T) {
	for tail, want := range map[string]int{"all": 0, "0": 0, "25": 25, "10abc": -1, "-3": -1, "": -1} {
		o, err := (&logFlags{tail: tail}).options()
		switch {
		case want < 0 && err == nil:
			t.Errorf("--tail %q: accepted as %d", tail, o.Tail)
		case want >= 0 && (err != nil || o.Tail != want):
			t.Errorf("--tail %q: %d, %v; want %d", tail, o.Tail, err, want)
		}
	}
}
