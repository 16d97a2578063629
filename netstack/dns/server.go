package dns

import (
	"context"
	"log/slog"
	"net"

	mdns "github.com/miekg/dns"
)

// Resolver answers one task's queries: from the current index, scoped to the
// task's networks, else from upstream.
type Resolver struct {
	// Index returns the index of the last View applied (nil before the first).
	Index func() *Index
	// Networks are the task's networks (IDs).
	Networks  []string
	Forwarder Forwarder
	Logger    *slog.Logger
}

// Reply is the resolver's reply to req, as it goes over UDP or TCP.
func (r *Resolver) Reply(ctx context.Context, req *mdns.Msg, udp bool) *mdns.Msg {
	resp, ok := r.Index().Answer(req, r.Networks)
	if !ok {
		var err error
		resp, err = r.Forwarder.Forward(ctx, req, !udp)
		if err != nil {
			r.Logger.DebugContext(ctx, "dns: no upstream answered", "question", questionOf(req), "error", err)
		}
	}
	Fit(resp, req, udp)
	return resp
}

func questionOf(req *mdns.Msg) string {
	if len(req.Question) == 0 {
		return ""
	}
	return req.Question[0].String()
}

// Server serves a resolver on a task's sockets until Close.
type Server struct {
	cancel  context.CancelFunc
	serving []serving
	logger  *slog.Logger
}

// serving is one of a Server's sockets being served.
type serving struct {
	srv *mdns.Server
	// started closes once srv serves (it can be shut down), stopped when it
	// returned (it may fail before it serves).
	started, stopped chan struct{}
}

// Serve serves r on a UDP socket and a TCP listener (127.0.0.11:53 in the task's
// namespace), each from goroutines of its own; the Server owns them.
func Serve(r *Resolver, pc net.PacketConn, l net.Listener) *Server {
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, req *mdns.Msg) {
		_, udp := w.LocalAddr().(*net.UDPAddr)
		if err := w.WriteMsg(r.Reply(ctx, req, udp)); err != nil {
			r.Logger.DebugContext(ctx, "dns: write a reply", "error", err)
		}
	})
	s := &Server{cancel: cancel, logger: r.Logger}
	s.start(&mdns.Server{PacketConn: pc, Handler: h})
	s.start(&mdns.Server{Listener: l, Handler: h})
	return s
}

func (s *Server) start(srv *mdns.Server) {
	sv := serving{srv: srv, started: make(chan struct{}), stopped: make(chan struct{})}
	srv.NotifyStartedFunc = func() { close(sv.started) }
	s.serving = append(s.serving, sv)
	go func() {
		defer close(sv.stopped)
		if err := srv.ActivateAndServe(); err != nil {
			s.logger.Warn("dns: serving stopped", "address", addrOf(srv), "error", err)
		}
	}()
}

func addrOf(srv *mdns.Server) string {
	if srv.Listener != nil {
		return "tcp " + srv.Listener.Addr().String()
	}
	return "udp " + srv.PacketConn.LocalAddr().String()
}

// Close stops serving, cancels the forwards under way, closes the sockets and
// returns when the serving goroutines have.
func (s *Server) Close() {
	s.cancel()
	for _, sv := range s.serving {
		select {
		case <-sv.started:
			if err := sv.srv.Shutdown(); err != nil {
				s.logger.Debug("dns: shut down", "address", addrOf(sv.srv), "error", err)
			}
		case <-sv.stopped:
		}
		<-sv.stopped
		// Shutdown closes a listener, not a packet socket; and neither when
		// serving failed.
		if sv.srv.PacketConn != nil {
			sv.srv.PacketConn.Close()
		}
		if sv.srv.Listener != nil {
			sv.srv.Listener.Close()
		}
	}
}
