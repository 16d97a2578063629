package testenv

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berthd/berth/netstack/osthread"
)

// RequireNetNS stops tb unless the test runs as root on a kernel that lets it make
// network namespaces.
func RequireNetNS(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		Unavailable(tb, "network namespace tests need root")
	}
	if err := osthread.Throwaway(func() error { return unix.Unshare(unix.CLONE_NEWNET) }); err != nil {
		Unavailable(tb, "cannot make a network namespace: "+err.Error())
	}
}
