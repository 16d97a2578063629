package store

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ALPNRaft is the TLS application protocol of raft's traffic on a node's port. The API
// shares the port and is told apart by its own protocol (http/1.1 or h2).
const ALPNRaft = "berth-raft/1"

// StreamLayer carries raft's connections over the node's mutual-TLS port. The port's
// listener hands it the connections that negotiated ALPNRaft; outgoing connections dial
// with the node's client certificate and ask for ALPNRaft.
type StreamLayer struct {
	addr      net.Addr
	clientTLS *tls.Config
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

// NewStreamLayer returns a stream layer advertising addr. clientTLS must verify peers
// against the cluster CA and present this node's certificate.
func NewStreamLayer(addr net.Addr, clientTLS *tls.Config) *StreamLayer {
	cfg := clientTLS.Clone()
	cfg.NextProtos = []string{ALPNRaft}
	return &StreamLayer{addr: addr, clientTLS: cfg, conns: make(chan net.Conn), done: make(chan struct{})}
}

// Handoff gives the stream layer an accepted connection that negotiated ALPNRaft. It
// closes the connection instead when the layer is closed.
func (s *StreamLayer) Handoff(conn net.Conn) {
	select {
	case s.conns <- conn:
	case <-s.done:
		_ = conn.Close()
	}
}

// Accept implements net.Listener for raft.
func (s *StreamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener; the port's listener stays open for the API.
func (s *StreamLayer) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	return nil
}

// Addr implements net.Listener: the address other managers reach this one at.
func (s *StreamLayer) Addr() net.Addr { return s.addr }

// Dial implements raft.StreamLayer.
func (s *StreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: s.clientTLS}
	conn, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, err
	}
	if p := conn.(*tls.Conn).ConnectionState().NegotiatedProtocol; p != ALPNRaft {
		_ = conn.Close()
		return nil, errors.New("peer at " + string(address) + " does not speak berth's raft protocol")
	}
	return conn, nil
}
