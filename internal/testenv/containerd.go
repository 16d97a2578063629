package testenv

import (
	"net"
	"os"
	"testing"
	"time"
)

// ContainerdAddressVar overrides the containerd socket that integration tests use.
const ContainerdAddressVar = "BERTH_CONTAINERD_ADDRESS"

// DefaultContainerdAddress is where Debian's containerd listens.
const DefaultContainerdAddress = "/run/containerd/containerd.sock"

// RequireContainerd stops tb unless the test runs as root and a containerd answers on its
// socket, and returns that socket's address. It only dials the socket, so that the many
// packages that import testenv do not link the containerd client; callers that hold a
// client should still check it (the executor's Ping does).
func RequireContainerd(tb testing.TB) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		Unavailable(tb, "containerd tests need root")
	}
	addr := os.Getenv(ContainerdAddressVar)
	if addr == "" {
		addr = DefaultContainerdAddress
	}
	conn, err := net.DialTimeout("unix", addr, 2*time.Second)
	if err != nil {
		Unavailable(tb, "containerd is not answering on "+addr+" (start it with `containerd &`): "+err.Error())
	}
	conn.Close()
	RequireCommand(tb, "runc", "containers run under runc")
	return addr
}
