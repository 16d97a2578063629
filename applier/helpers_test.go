package applier

import (
	"io"
	"testing"
)

// closeRepo closes a Repository at the end of the test.
func closeRepo(tb testing.TB, r io.Closer) {
	tb.Cleanup(func() {
		if err := r.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
}
