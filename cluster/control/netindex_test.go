package control

import (
	"context"
	"errors"
	"testing"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/state"
)

// stateOnly is a Store with an empty state and no raft.
type stateOnly struct{ st *state.Store }

func (s stateOnly) State() *state.Store { return s.st }
func (s stateOnly) StateIndex() uint64  { return 0 }
func (s stateOnly) Apply(context.Context, command.Type, any) (uint64, error) {
	return 0, errors.New("no raft")
}

func TestUnderlay(t *testing.T) {
	for addr, want := range map[string]string{
		"198.18.0.1:4270": "198.18.0.1",
		"198.18.0.1":      "198.18.0.1",
		"[fd00::1]:4270":  "fd00::1",
		"":                "",
	} {
		if got := underlay(addr); got != want {
			t.Errorf("underlay(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestBareAddr(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.1.5/24": "10.0.1.5",
		"10.0.1.5":    "10.0.1.5",
		"10.0.1/24":   "",
		"":            "",
	} {
		got, ok := bareAddr(in)
		if got != want || ok != (want != "") {
			t.Errorf("bareAddr(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// The refresh loop runs while watches are open, and stops with the last.
func TestNetViewsRefreshLoopFollowsTheWatches(t *testing.T) {
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	v := newNetViews(New(Config{Store: stateOnly{st}}))
	v.join()
	v.join()
	v.leave()
	v.mu.Lock()
	running := v.stop != nil
	v.mu.Unlock()
	if !running {
		t.Fatal("the loop stopped while a watch was open")
	}
	v.leave()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.watchers != 0 || v.stop != nil {
		t.Errorf("after the last watch: %d watchers, loop running %v", v.watchers, v.stop != nil)
	}
}
