package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/store"
)

func TestForwarderToADeadLeader(t *testing.T) {
	// A forwarder that cannot reach the leader reports no leader, so the store retries.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	f := forwarder{hc: func() *http.Client { return api.NewTLSHTTPClient(&tls.Config{}) }}
	if _, err := f.Forward(context.Background(), addr, []byte{1}); !errors.Is(err, store.ErrNoLeader) {
		t.Errorf("forward to a dead leader: %v", err)
	}
}
