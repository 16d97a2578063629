package api

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
)

// DialStdio connects in and out to the node socket of host (a unix:// host): the
// far end of an ssh:// client, run as `berth system dial-stdio` by the ssh session.
// It returns when the socket closes the connection, or when in ends and the socket
// has answered.
func DialStdio(ctx context.Context, host string, in io.Reader, out io.Writer) error {
	path := strings.TrimPrefix(host, "unix://")
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("dial-stdio connects to this node's socket (unix:///path), not %s", host)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return &ConnectError{Host: "unix://" + path, Err: err, unix: true}
	}
	defer conn.Close()
	uc := conn.(*net.UnixConn)
	go func() {
		// The client has said all it will: the daemon may still answer.
		_, _ = io.Copy(uc, in)
		_ = uc.CloseWrite()
	}()
	if _, err := io.Copy(out, uc); err != nil {
		return fmt.Errorf("copy from %s: %w", host, err)
	}
	return nil
}
