package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// DefaultRemoteBinary is the berth an ssh:// host runs when no other is given: the
// one on the PATH of the ssh session.
const DefaultRemoteBinary = "berth"

// WithRemoteBinary sets the berth an ssh:// host runs (`PATH dial-stdio`).
func WithRemoteBinary(path string) Option { return func(o *clientOptions) { o.remoteBinary = path } }

// sshTarget is an ssh://[user@]host[:port] host, as the system ssh takes it.
type sshTarget struct {
	user, host, port string
}

func parseSSHHost(host string) (sshTarget, error) {
	u, err := url.Parse(host)
	if err != nil || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return sshTarget{}, fmt.Errorf("invalid host %q: expected ssh://[user@]host[:port]", host)
	}
	if _, hasPassword := u.User.Password(); hasPassword {
		return sshTarget{}, fmt.Errorf("invalid host %q: berth never takes an ssh password in a URL; use a key (ssh-agent or ~/.ssh/config)", host)
	}
	return sshTarget{user: u.User.Username(), host: u.Hostname(), port: u.Port()}, nil
}

// args are the system ssh's arguments that run `remote system dial-stdio` on the
// host: -T, no terminal; the host after --, so that a host name can never be taken
// for an option.
func (t sshTarget) args(remote string) []string {
	args := []string{"-T", "-o", "ConnectTimeout=30"}
	if t.user != "" {
		args = append(args, "-l", t.user)
	}
	if t.port != "" {
		args = append(args, "-p", t.port)
	}
	return append(args, "--", t.host, remote, "system", "dial-stdio")
}

// dial starts ssh: the connection is its standard input and output, which the
// remote berth copies to and from its node's socket.
func (t sshTarget) dial(remote string) (net.Conn, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	c := &sshConn{target: t, in: inW, out: outR, exited: make(chan struct{})}
	c.cmd = exec.Command("ssh", t.args(remote)...)
	c.cmd.Stdin, c.cmd.Stdout, c.cmd.Stderr = inR, outW, &c.stderr
	err = c.cmd.Start()
	// The child holds its ends now; ours would keep the pipes open after it exits.
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, &dialError{err: fmt.Errorf("run ssh (is an OpenSSH client installed?): %w", err)}
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// SSHError is ssh failing to reach the host or to run berth there (host unknown or
// unreachable, key refused, no berth on the PATH): Reason is what ssh or the remote
// side said last.
type SSHError struct {
	Host   string
	Reason string
}

func (e *SSHError) Error() string {
	return fmt.Sprintf("cannot reach the berth daemon of %s over ssh: %s", e.Host, e.Reason)
}

// sshConn is a connection over an ssh process's standard input and output.
type sshConn struct {
	target  sshTarget
	cmd     *exec.Cmd
	in      *os.File
	out     *os.File
	stderr  syncBuffer
	exited  chan struct{}
	waitErr error
	once    sync.Once
}

// Read reports an ssh that ended with an error, rather than the end of the
// connection: that is how an unreachable host or a refused key shows.
func (c *sshConn) Read(p []byte) (int, error) {
	n, err := c.out.Read(p)
	if errors.Is(err, io.EOF) {
		return n, c.exitError(err)
	}
	return n, err
}

// Write reports an ssh that ended with an error too: a large request (an image
// archive) fills the pipe before the answer's end would show it.
func (c *sshConn) Write(p []byte) (int, error) {
	n, err := c.in.Write(p)
	if err != nil {
		return n, c.exitError(err)
	}
	return n, nil
}

// exitError is how ssh ended when it failed, else err. ssh closes its ends just
// before it exits, so the wait is short; a bound keeps a stuck one from hanging.
func (c *sshConn) exitError(err error) error {
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		return err
	}
	if c.waitErr != nil {
		return &SSHError{Host: c.target.String(), Reason: c.stderr.lastLine(c.waitErr)}
	}
	return err
}

func (c *sshConn) Close() error {
	c.once.Do(func() {
		c.in.Close()
		_ = c.cmd.Process.Kill()
		<-c.exited
		c.out.Close()
	})
	return nil
}

func (c *sshConn) LocalAddr() net.Addr              { return sshAddr("local") }
func (c *sshConn) RemoteAddr() net.Addr             { return sshAddr(c.target.String()) }
func (c *sshConn) SetDeadline(time.Time) error      { return nil }
func (c *sshConn) SetReadDeadline(time.Time) error  { return nil }
func (c *sshConn) SetWriteDeadline(time.Time) error { return nil }

func (t sshTarget) String() string {
	s := t.host
	if t.user != "" {
		s = t.user + "@" + s
	}
	if t.port != "" {
		s = net.JoinHostPort(s, t.port)
	}
	return "ssh://" + s
}

type sshAddr string

func (a sshAddr) Network() string { return "ssh" }
func (a sshAddr) String() string  { return string(a) }

// syncBuffer is ssh's standard error, written by exec's copier while Read may look.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 64<<10 {
		return len(p), nil
	}
	return b.buf.Write(p)
}

// lastLine is the last line ssh wrote, or how it ended when it wrote none.
func (b *syncBuffer) lastLine(exit error) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(b.buf.String()), "\n")
	if last := strings.TrimSpace(lines[len(lines)-1]); last != "" {
		return strings.TrimPrefix(last, "berth: ")
	}
	return "ssh " + exit.Error()
}

// sshHTTPClient is the client of an ssh:// host: each connection is an ssh process.
func sshHTTPClient(t sshTarget, remote string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:     func(context.Context, string, string) (net.Conn, error) { return t.dial(remote) },
		MaxIdleConns:    1,
		IdleConnTimeout: 30 * time.Second,
	}}
}
