package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
)

// A worker's agent reads its node's network view from the managers, over mutual
// TLS with the node's certificate: the view names the node's own underlay address.
func TestAgentReadsItsNetworkView(t *testing.T) {
	dir := shortTempDir(t)
	ctx := context.Background()
	views := make(chan *api.NetworkView, 1)
	m1 := startNode(t, dir, "m1")
	w1 := startNode(t, dir, "w1", func(c *Config) {
		c.Agent = func(ctx context.Context, a AgentAPI) error {
			for ctx.Err() == nil {
				v, meta, err := a.NodeNetworkView(ctx, api.Query{})
				if err == nil && meta.Index > 0 {
					select {
					case views <- v:
					default:
					}
					<-ctx.Done()
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			return ctx.Err()
		}
	})
	init, err := m1.c.Init(ctx, api.InitRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w1.c.Join(ctx, api.JoinRequest{RemoteAddr: init.ManagerAddr, Token: init.WorkerToken}); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-views:
		if v.Underlay != "127.0.0.1" || len(v.Networks) != 0 {
			t.Errorf("w1's view: underlay %q, %d networks; want 127.0.0.1 and none", v.Underlay, len(v.Networks))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("w1's agent read no network view within 30s")
	}
}
