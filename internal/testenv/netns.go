package testenv

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// RequireNetNS stops tb unless the test runs as root on a kernel that lets it make
// network namespaces.
func RequireNetNS(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		Unavailable(tb, "network namespace tests need root")
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends up in a namespace of its own, and a
		// goroutine that exits while locked takes its thread with it.
		errc <- unix.Unshare(unix.CLONE_NEWNET)
	}()
	if err := <-errc; err != nil {
		Unavailable(tb, "cannot make a network namespace: "+err.Error())
	}
}
