// Package osthread runs code that changes its OS thread's namespaces on a thread of
// its own, which is thrown away afterwards.
package osthread

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// Throwaway runs fn on an OS thread of its own that leaves the process afterwards:
// fn may change the thread's namespaces, and no goroutine may run there after it.
//
// Never on the main thread: Go does not end it when a locked goroutine exits there
// (it parks it for good), and it is the thread whose namespaces /proc/self/ns shows,
// so a namespace fn entered there would stay the process's for everyone who looks.
func Throwaway(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// Holding the main thread while another goroutine runs fn keeps fn
			// off it; then the main thread goes back to the scheduler unchanged.
			err := Throwaway(fn)
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		// No UnlockOSThread: a goroutine that exits while locked takes its
		// thread with it, which is how the changed thread leaves the process.
		errc <- fn()
	}()
	return <-errc
}
