package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
)

// Every node's heartbeats tell the leader which berth it runs, which its row records
// for the protocol gate.
func TestNodesReportTheirBerth(t *testing.T) {
	ctx := context.Background()
	tn := startNode(t, shortTempDir(t), "m1", func(c *Config) { c.Version = "v9.9.9-test" })
	if _, err := tn.c.Init(ctx, api.InitRequest{}); err != nil {
		t.Fatal(err)
	}
	want := model.NodeEngine{Version: "v9.9.9-test", Protocol: command.Version}
	eventually(t, 10*time.Second, func() error {
		nodes, _, err := tn.c.Nodes(ctx, api.Query{})
		if err != nil {
			return err
		}
		if len(nodes) != 1 || nodes[0].Engine != want {
			return fmt.Errorf("nodes %+v, want one running %+v", nodes, want)
		}
		return nil
	})
}

// A manager whose FSM stopped (store.Config.OnHalt) exits with the reason rather than
// serve a state that no longer follows the cluster's.
func TestHaltedManagerExits(t *testing.T) {
	tn := startNode(t, shortTempDir(t), "m1")
	reason := &command.UnknownEntryError{Index: 1234, Type: 40}
	tn.n.halt(reason)
	select {
	case err := <-tn.done:
		if !errors.Is(err, command.ErrUnknown) || !strings.Contains(err.Error(), "raft entry 1234 is command 40") {
			t.Fatalf("Run returned %v, want the unknown entry", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon did not exit within 20s")
	}
	tn.cancel()
	tn.cancel = nil
}
