package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/store"
)

// handshakeTimeout bounds a TLS handshake on the port, so that a client that connects
// and says nothing does not hold a goroutine.
const handshakeTimeout = 10 * time.Second

// port is the node's one TCP port: mutual TLS, then raft or the API by ALPN. Raft
// connections must present a manager certificate of the cluster before they reach
// raft; API connections are authenticated per request by the handler (the join
// endpoint needs no certificate, which is why the handshake lets certificate-less
// clients through).
type port struct {
	ln        net.Listener
	api       *http.Server
	apiLn     *chanListener
	stream    atomic.Pointer[store.StreamLayer]
	clusterID string
	logger    *slog.Logger
	wg        sync.WaitGroup
}

// openPort listens on addr. ident returns the node's current identity, read at every
// handshake so that a renewed certificate is used at once.
func openPort(addr, clusterID string, ident func() *identity, handler http.Handler, logger *slog.Logger) (*port, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &port{
		ln:        ln,
		apiLn:     newChanListener(ln.Addr()),
		clusterID: clusterID,
		logger:    logger,
	}
	p.api = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	tlsCfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			id := ident()
			if id == nil {
				return nil, errors.New("this node has no certificate")
			}
			cfg := ca.ServerTLSConfig(id.root, id.cert, ca.WithOptionalClientCert(), ca.WithAdditionalRoots(id.trusted...))
			cfg.NextProtos = []string{store.ALPNRaft, "http/1.1"}
			return cfg, nil
		},
	}
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		p.accept(tlsCfg)
	}()
	go func() {
		defer p.wg.Done()
		if err := p.api.Serve(p.apiLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("API server on the node port stopped", "error", err)
		}
	}()
	return p, nil
}

// setStream routes raft connections to sl (nil: refuse them).
func (p *port) setStream(sl *store.StreamLayer) { p.stream.Store(sl) }

func (p *port) accept(cfg *tls.Config) {
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.logger.Error("node port: accept failed", "error", err)
			}
			return
		}
		go p.demux(tls.Server(conn, cfg))
	}
}

func (p *port) demux(conn *tls.Conn) {
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := conn.Handshake(); err != nil {
		// A client with a certificate of another CA lands here.
		p.logger.Debug("node port: TLS handshake failed", "remote", conn.RemoteAddr().String(), "error", err)
		conn.Close()
		return
	}
	_ = conn.SetDeadline(time.Time{})
	cs := conn.ConnectionState()
	if cs.NegotiatedProtocol != store.ALPNRaft {
		p.apiLn.push(conn)
		return
	}
	if _, err := ca.RequireConnIdentity(cs, p.clusterID, ca.RoleManager); err != nil {
		p.logger.Warn("node port: raft connection refused", "remote", conn.RemoteAddr().String(), "error", err)
		conn.Close()
		return
	}
	sl := p.stream.Load()
	if sl == nil {
		conn.Close()
		return
	}
	sl.Handoff(conn)
}

// close stops accepting, closes API connections (waiting up to ctx for requests in
// flight) and returns when the port's goroutines are gone. Raft's connections are
// raft's: the store closes them.
func (p *port) close(ctx context.Context) {
	_ = p.ln.Close()
	if err := p.api.Shutdown(ctx); err != nil {
		_ = p.api.Close()
	}
	p.apiLn.Close()
	p.wg.Wait()
}

// chanListener is a net.Listener fed by the demultiplexer.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
