package netstack

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// relaySpec is one relay of a published port: where it listens in the host namespace
// ([::]:<published>, the mapping's IPv6 host IP, or 127.0.0.1:<published>), and the
// task's IPv4 address and port it relays to. It is also what the task's relays file
// holds.
type relaySpec struct {
	Protocol string         `json:"protocol"`
	Listen   netip.AddrPort `json:"listen"`
	To       netip.AddrPort `json:"to"`
}

// loopbackRelayAddr is where a port published on all IPv4 addresses has a relay:
// a connection the node makes to 127.0.0.1 cannot be DNATed to a task (see
// dnatExprs), so it is relayed, as Docker's docker-proxy does.
var loopbackRelayAddr = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// String names the relay's port in messages, as "8080/tcp".
func (s relaySpec) String() string { return fmt.Sprintf("%d/%s", s.Listen.Port(), s.Protocol) }

// kind names the relay in messages.
func (s relaySpec) kind() string {
	if s.Listen.Addr().Is4() {
		return "loopback relay"
	}
	return "IPv6 relay"
}

// network is the relay's socket's network, as net.Listen names it.
func (s relaySpec) network() string {
	if s.Listen.Addr().Is4() {
		return s.Protocol + "4"
	}
	return s.Protocol + "6"
}

// overlaps says whether s and o cannot both listen: the same protocol, port and
// address family, and the same address or one of them on all.
func (s relaySpec) overlaps(o relaySpec) bool {
	a, b := s.Listen.Addr(), o.Listen.Addr()
	return s.Protocol == o.Protocol && s.Listen.Port() == o.Listen.Port() && a.Is4() == b.Is4() &&
		(a == b || a.IsUnspecified() || b.IsUnspecified())
}

// relaysFileName is the file in the task's directory that lists its relays, for a
// restarted daemon to start them again.
const relaysFileName = "relays.json"

type relaysFile struct {
	Relays []relaySpec `json:"relays"`
}

const (
	// relayDialTimeout bounds a relay's connection to the task: a running task
	// answers or refuses at once, so this only cuts short a task whose packets go
	// nowhere, which the client would otherwise wait on for minutes.
	relayDialTimeout = 10 * time.Second
	// udpIdle is how long a UDP session lives without a datagram either way: UDP
	// has no end, so a client that went away shows only by its silence. 90 s, as
	// docker-proxy's, outlasts the 30 to 60 s keepalives of protocols that hold a
	// flow open, and does not keep a gone client's socket for long.
	udpIdle = 90 * time.Second
	// maxUDPSessions bounds the sessions of one UDP relay, each a socket and a
	// goroutine with a datagram buffer: a flood of clients must not take all the
	// daemon's file descriptors or memory. A new client beyond it takes the place of
	// the least recently active one, which with request-answer protocols (a DNS
	// client takes a new port per query) is long done.
	maxUDPSessions = 512
	// maxDatagram is the largest UDP payload.
	maxDatagram = 65535
)

// taskRelays are one task's relays of its published ports over IPv6 and on
// 127.0.0.1. Tasks have IPv4 addresses only, so the kernel cannot translate a
// connection to the node's IPv6 address into one to the task's, nor route one to
// 127.0.0.1 out of the loopback interface; as Docker's docker-proxy does, a relay
// accepts it in the host namespace and opens another to the task. Like
// docker-proxy's, that connection comes from the node (the task's bridge gateway):
// the task does not see the client's address.
type taskRelays struct {
	specs  []relaySpec
	ns     netns.NsHandle // the host namespace, which relays dial from
	logger *slog.Logger
	// ctx ends when the relays close, cutting short dials in progress.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	// open are the listeners and connections to close with the relays.
	open map[io.Closer]struct{}
}

// relaysPath is the task's relays file.
func (n *Netstack) relaysPath(taskID string) string {
	return filepath.Join(n.tasksDir(), taskID, relaysFileName)
}

// syncRelays makes the task's running relays, and its relays file, specs.
func (n *Netstack) syncRelays(taskID string, specs []relaySpec) error {
	path := n.relaysPath(taskID)
	n.relaysMu.Lock()
	cur := n.relays[taskID]
	n.relaysMu.Unlock()
	if cur == nil || !slices.Equal(cur.specs, specs) {
		// The old relays go first: the new ones may listen on the same ports.
		n.stopRelays(taskID)
		n.takeOver(taskID, specs)
		if len(specs) > 0 {
			r, err := n.startRelays(specs)
			if err != nil {
				// A file without its relays would have a restarted daemon
				// start what Setup could not.
				return errors.Join(err, writeRelaysFile(path, nil))
			}
			n.setRelays(taskID, r)
		}
	}
	return writeRelaysFile(path, specs)
}

func (n *Netstack) setRelays(taskID string, r *taskRelays) {
	n.relaysMu.Lock()
	defer n.relaysMu.Unlock()
	if n.relays == nil {
		n.relays = map[string]*taskRelays{}
	}
	n.relays[taskID] = r
}

// takeOver stops the relays of other tasks that listen where specs do, and removes
// their relays files. The scheduler gives a node a task publishing a host port only
// once the port's previous task there stopped running (a task holds its ports from
// assignment until it is past running), so such relays are those of a task whose
// container exited and whose Teardown has not come yet: its replacement, set up at
// the same time, must not be rejected because berth itself holds the port.
func (n *Netstack) takeOver(taskID string, specs []relaySpec) {
	n.relaysMu.Lock()
	var stale []string
	for id, r := range n.relays {
		if id != taskID && slices.ContainsFunc(r.specs, func(s relaySpec) bool {
			return slices.ContainsFunc(specs, s.overlaps)
		}) {
			stale = append(stale, id)
		}
	}
	n.relaysMu.Unlock()
	for _, id := range stale {
		n.logger.Info("a task takes over published ports from a task that stopped running", "task", taskID, "from", id)
		n.stopRelays(id)
		// A restarted daemon must not start them again, for the port's new task.
		if err := writeRelaysFile(n.relaysPath(id), nil); err != nil {
			n.logger.Warn("cannot remove the relays file of a task whose ports were taken over", "task", id, "error", err)
		}
	}
}

// stopRelays closes the task's relays and their connections.
func (n *Netstack) stopRelays(taskID string) {
	n.relaysMu.Lock()
	r := n.relays[taskID]
	delete(n.relays, taskID)
	n.relaysMu.Unlock()
	if r != nil {
		r.close()
	}
}

// Close stops the relays of the tasks' published ports and their resolvers, and
// changes nothing else: the tasks keep their sandboxes, rules and files, from which
// the next daemon's New starts the relays and resolvers again. The Netstack is not
// to be used after Close.
func (n *Netstack) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closeDNS()
	n.relaysMu.Lock()
	all := n.relays
	n.relays = nil
	n.relaysMu.Unlock()
	for _, r := range all {
		r.close()
	}
}

// restartRelays starts the relays the tasks' relays files list: the kernel kept the
// rules of tasks that ran on while the daemon restarted, but their relays died with
// the old daemon. A file that cannot be read or a relay that cannot start is logged
// and skipped, so that the rest of the node comes up.
func (n *Netstack) restartRelays(ctx context.Context) {
	entries, err := os.ReadDir(n.tasksDir())
	if err != nil {
		n.logger.WarnContext(ctx, "cannot restart the relays of published ports", "error", err)
		return
	}
	for _, e := range entries {
		taskID := e.Name()
		path := n.relaysPath(taskID)
		specs, err := readRelaysFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil {
			err = checkTaskID(taskID)
		}
		if err != nil {
			n.logger.WarnContext(ctx, "not restarting a task's relays", "task", taskID, "error", err)
			continue
		}
		// After a reboot the file is there and the task is not: its relays would
		// hold ports for nothing until the agent tears the task down.
		mounted, err := isNetNSMount(n.Sandbox(taskID).NetNSPath)
		if err != nil {
			n.logger.WarnContext(ctx, "not restarting a task's relays", "task", taskID, "error", err)
			continue
		}
		if !mounted {
			n.logger.InfoContext(ctx, "not restarting the relays of a task without a network namespace", "task", taskID)
			continue
		}
		r, err := n.startRelays(specs)
		if err != nil {
			n.logger.WarnContext(ctx, "not restarting a task's relays", "task", taskID, "error", err)
			continue
		}
		n.setRelays(taskID, r)
		n.logger.InfoContext(ctx, "restarted relays", "task", taskID, "ports", len(specs))
	}
}

// writeRelaysFile writes the task's relays file, or removes it when there are no
// relays. A new file is renamed over the old, so that a crash leaves one of them
// whole.
func writeRelaysFile(path string, specs []relaySpec) error {
	if len(specs) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove relays file: %w", err)
		}
		return nil
	}
	data, err := json.Marshal(relaysFile{Relays: specs})
	if err != nil {
		return fmt.Errorf("encode relays file %s: %w", path, err)
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write relays file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write relays file: %w", err)
	}
	return nil
}

// readRelaysFile reads a task's relays file, checking that it holds what
// writeRelaysFile writes.
func readRelaysFile(path string) ([]relaySpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f relaysFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("relays file %s: %w", path, err)
	}
	for _, s := range f.Relays {
		if s.Protocol != "tcp" && s.Protocol != "udp" || !s.Listen.Addr().Is6() && s.Listen.Addr() != loopbackRelayAddr ||
			s.Listen.Port() == 0 || !s.To.Addr().Is4() || s.To.Port() == 0 {
			return nil, fmt.Errorf("relays file %s: %+v is not a relay of an IPv6 or 127.0.0.1 port to an IPv4 one", path, s)
		}
	}
	return f.Relays, nil
}

// startRelays starts relays for specs in the host namespace. A relay on [::] that
// finds no IPv6 there is left out, and the node publishes over IPv4 only; so is one
// on 127.0.0.1 where the loopback interface has no such address.
func (n *Netstack) startRelays(specs []relaySpec) (*taskRelays, error) {
	ns, err := netns.GetFromPath(n.hostNS)
	if err != nil {
		return nil, fmt.Errorf("open host network namespace %s: %w", n.hostNS, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &taskRelays{specs: specs, ns: ns, logger: n.logger, ctx: ctx, cancel: cancel, open: map[io.Closer]struct{}{}}
	for _, s := range specs {
		err := r.start(s)
		if err == nil {
			continue
		}
		if s.Listen.Addr().IsUnspecified() && (errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EADDRNOTAVAIL)) {
			n.noIPv6.Do(func() {
				n.logger.Info("the node has no IPv6: published ports are reachable over IPv4 only", "error", err)
			})
			continue
		}
		if s.Listen.Addr() == loopbackRelayAddr && errors.Is(err, unix.EADDRNOTAVAIL) {
			n.logger.Warn("the node's loopback interface lacks 127.0.0.1: a published port does not answer there", "port", s.String(), "error", err)
			continue
		}
		r.close()
		err = fmt.Errorf("port %s: %s: %w", s, s.kind(), err)
		switch {
		case errors.Is(err, unix.EADDRINUSE):
			err = fmt.Errorf("%w: another program on the node holds the port; free it or publish another port", err)
		case errors.Is(err, unix.EADDRNOTAVAIL):
			err = fmt.Errorf("%w: %s is not an address of this node; publish on one of its addresses, or on all", err, s.Listen.Addr())
		}
		return nil, err
	}
	return r, nil
}

// start starts one relay: its socket is made in the host namespace, and it serves
// from a goroutine of its own.
func (r *taskRelays) start(s relaySpec) error {
	if s.Protocol == "tcp" {
		var l net.Listener
		if err := inNetNS(r.ns, func() (err error) {
			l, err = net.Listen(s.network(), s.Listen.String())
			return err
		}); err != nil {
			return err
		}
		r.track(l)
		r.wg.Go(func() { r.acceptTCP(l.(*net.TCPListener), s) })
		return nil
	}
	var pc net.PacketConn
	if err := inNetNS(r.ns, func() (err error) {
		pc, err = net.ListenPacket(s.network(), s.Listen.String())
		return err
	}); err != nil {
		return err
	}
	r.track(pc)
	conn := pc.(*net.UDPConn)
	// A socket on 127.0.0.1 answers from there; one on [::] must be told.
	if s.Listen.Addr().Is6() {
		if err := recvPktInfo(conn); err != nil {
			return err
		}
	}
	u := &udpRelay{relays: r, spec: s, conn: conn, sessions: map[netip.AddrPort]*udpSession{}}
	r.wg.Go(u.serve)
	return nil
}

// recvPktInfo has the socket tell, with each datagram, the address it was sent to.
func recvPktInfo(c *net.UDPConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("IPV6_RECVPKTINFO: %w", err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
	}); err != nil {
		return fmt.Errorf("IPV6_RECVPKTINFO: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("IPV6_RECVPKTINFO: %w", serr)
	}
	return nil
}

// replyFrom returns the control message that sends a reply from the address (and
// through the interface) a datagram came to, out of the packet information the
// socket received with it; nil when there is none.
func replyFrom(oob []byte) []byte {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= unix.SizeofInet6Pktinfo {
			var info unix.Inet6Pktinfo
			copy(info.Addr[:], m.Data)
			info.Ifindex = binary.NativeEndian.Uint32(m.Data[len(info.Addr):])
			return unix.PktInfo6(&info)
		}
	}
	return nil
}

// track registers c to be closed with the relays. When they are closed already, it
// closes c and returns false.
func (r *taskRelays) track(c io.Closer) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.Close()
		return false
	}
	r.open[c] = struct{}{}
	return true
}

// release closes c, which the relays no longer have to.
func (r *taskRelays) release(c io.Closer) {
	r.mu.Lock()
	delete(r.open, c)
	r.mu.Unlock()
	c.Close()
}

// close stops the relays, closing their listeners and connections, and returns when
// their goroutines have.
func (r *taskRelays) close() {
	r.cancel()
	r.mu.Lock()
	r.closed = true
	open := r.open
	r.open = nil
	r.mu.Unlock()
	for c := range open {
		c.Close()
	}
	r.wg.Wait()
	r.ns.Close()
}

// dial connects to the task from the host namespace.
func (r *taskRelays) dial(network string, to netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	err := inNetNS(r.ns, func() (err error) {
		d := net.Dialer{Timeout: relayDialTimeout}
		c, err = d.DialContext(r.ctx, network, to.String())
		return err
	})
	return c, err
}

// retry waits before another try of an accept or a read that failed, twice as long
// as the last time up to a second: such failures (out of file descriptors, of
// memory) last a while, and trying again at once would spin. It returns the time
// it waited, or false when the relays closed meanwhile.
func (r *taskRelays) retry(last time.Duration) (time.Duration, bool) {
	d := min(max(2*last, 5*time.Millisecond), time.Second)
	select {
	case <-r.ctx.Done():
		return d, false
	case <-time.After(d):
		return d, true
	}
}

func (r *taskRelays) acceptTCP(l *net.TCPListener, s relaySpec) {
	var delay time.Duration
	for {
		c, err := l.AcceptTCP()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			r.logger.Warn(s.kind()+" cannot accept connections", "port", s.String(), "error", err)
			var ok bool
			if delay, ok = r.retry(delay); !ok {
				return
			}
			continue
		}
		delay = 0
		if r.track(c) {
			r.wg.Go(func() { r.relayTCP(c, s) })
		}
	}
}

// relayTCP relays one client's connection to the task.
func (r *taskRelays) relayTCP(client *net.TCPConn, s relaySpec) {
	defer r.release(client)
	c, err := r.dial("tcp4", s.To)
	if err != nil {
		r.logger.Debug(s.kind()+" cannot reach the task", "port", s.String(), "to", s.To.String(), "error", err)
		return
	}
	task := c.(*net.TCPConn)
	if !r.track(task) {
		return
	}
	defer r.release(task)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pipe(task, client)
	}()
	pipe(client, task)
	<-done
}

// pipe copies what src sends to dst. When src ends its side of the connection, dst's
// ends too, and the other way goes on until its sender ends it as well (a
// half-closed connection); an error ends both ways.
func pipe(dst, src *net.TCPConn) {
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		src.Close()
		return
	}
	dst.CloseWrite()
}

// udpRelay relays the datagrams of each client address through a socket of its own
// to the task, and sends the task's answers back to that client.
type udpRelay struct {
	relays *taskRelays
	spec   relaySpec
	conn   *net.UDPConn // the listening socket, which answers go out of

	mu       sync.Mutex
	sessions map[netip.AddrPort]*udpSession // by client address
}

type udpSession struct {
	task *net.UDPConn // connected to the task's port
	// from sends replies from the node's address the client sent to: on [::],
	// the kernel would pick one, which on a node with several addresses may not
	// be that one, and the client would take the reply for someone else's.
	from []byte
	// last is when a datagram last went either way, in Unix nanoseconds.
	last atomic.Int64
}

func (s *udpSession) touch()                { s.last.Store(time.Now().UnixNano()) }
func (s *udpSession) lastActive() time.Time { return time.Unix(0, s.last.Load()) }

func (u *udpRelay) serve() {
	buf := make([]byte, maxDatagram)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofInet6Pktinfo))
	var delay time.Duration
	for {
		n, oobn, _, client, err := u.conn.ReadMsgUDPAddrPort(buf, oob)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			u.relays.logger.Warn(u.spec.kind()+" cannot receive datagrams", "port", u.spec.String(), "error", err)
			var ok bool
			if delay, ok = u.relays.retry(delay); !ok {
				return
			}
			continue
		}
		delay = 0
		s := u.session(client, oob[:oobn])
		if s == nil {
			continue
		}
		s.touch()
		// UDP loses datagrams: one that cannot be sent is lost like those.
		_, _ = s.task.Write(buf[:n])
	}
}

// session returns the client's session, making it for a new client, whose first
// datagram came with oob. Only serve makes sessions; their goroutines remove them.
func (u *udpRelay) session(client netip.AddrPort, oob []byte) *udpSession {
	u.mu.Lock()
	s := u.sessions[client]
	u.mu.Unlock()
	if s != nil {
		return s
	}
	c, err := u.relays.dial("udp4", u.spec.To)
	if err != nil {
		u.relays.logger.Debug(u.spec.kind()+" cannot reach the task", "port", u.spec.String(), "to", u.spec.To.String(), "error", err)
		return nil
	}
	if !u.relays.track(c) {
		return nil
	}
	s = &udpSession{task: c.(*net.UDPConn), from: replyFrom(oob)}
	s.touch()
	u.mu.Lock()
	if len(u.sessions) >= maxUDPSessions {
		u.evictLocked()
	}
	u.sessions[client] = s
	u.mu.Unlock()
	u.relays.wg.Go(func() { u.answer(client, s) })
	return s
}

// evictLocked ends the least recently active session. Call it with mu held.
func (u *udpRelay) evictLocked() {
	var oldest netip.AddrPort
	var victim *udpSession
	for client, s := range u.sessions {
		if victim == nil || s.last.Load() < victim.last.Load() {
			oldest, victim = client, s
		}
	}
	delete(u.sessions, oldest)
	// Its goroutine ends on the closed socket.
	u.relays.release(victim.task)
	u.relays.logger.Debug(u.spec.kind()+" has too many UDP clients: dropped the least recently active", "port", u.spec.String(), "client", oldest.String())
}

// answer sends the task's datagrams to the client until the session has been idle
// for udpIdle, or its socket is closed.
func (u *udpRelay) answer(client netip.AddrPort, s *udpSession) {
	defer func() {
		u.mu.Lock()
		if u.sessions[client] == s {
			delete(u.sessions, client)
		}
		u.mu.Unlock()
		u.relays.release(s.task)
	}()
	buf := make([]byte, maxDatagram)
	for {
		if err := s.task.SetReadDeadline(s.lastActive().Add(udpIdle)); err != nil {
			return
		}
		n, err := s.task.Read(buf)
		switch {
		case err == nil:
			s.touch()
			// Lost like any datagram when it cannot be sent.
			_, _, _ = u.conn.WriteMsgUDPAddrPort(buf[:n], s.from, client)
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The client may have sent something since the deadline was set.
			if time.Since(s.lastActive()) >= udpIdle {
				return
			}
		case errors.Is(err, unix.ECONNREFUSED):
			// Nothing listened on the task's port when a datagram came: a
			// later one may find something.
		default:
			return
		}
	}
}
