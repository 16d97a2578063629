package osthread_test

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/netstack/osthread"
)

// The main goroutine starts on the main thread; locked there, it is still there when
// TestMain runs.
func init() { runtime.LockOSThread() }

// fromMainThread is what unsharing from the main thread's goroutine did, the way a
// daemon's main goroutine (or anything else on that thread) would call Throwaway:
// when the caller blocks, the goroutine Throwaway started is the one its thread
// runs next.
var fromMainThread error

func TestMain(m *testing.M) {
	runtime.UnlockOSThread()
	if os.Geteuid() == 0 {
		fromMainThread = unshareRounds(20)
	}
	os.Exit(m.Run())
}

// unshareRounds unshares a network namespace on thrown-away threads, and fails when
// the process's (the main thread's) namespace changed: Go never ends the main thread
// (it parks it for good instead), so a namespace changed there would stay, and mislead
// every later look at /proc/self/ns.
func unshareRounds(n int) error {
	before, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return err
	}
	for i := range n {
		if err := osthread.Throwaway(func() error { return unix.Unshare(unix.CLONE_NEWNET) }); err != nil {
			return err
		}
		if after, err := os.Readlink("/proc/self/ns/net"); err != nil || after != before {
			return fmt.Errorf("round %d: the process's network namespace is %s (%v), was %s", i, after, err, before)
		}
	}
	return nil
}

func TestThrowawayLeavesTheMainThread(t *testing.T) {
	testenv.RequireNetNS(t)
	if fromMainThread != nil {
		t.Fatalf("called from the main thread: %v", fromMainThread)
	}
	if err := unshareRounds(200); err != nil {
		t.Fatal(err)
	}
}
