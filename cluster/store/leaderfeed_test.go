package store

import (
	"testing"
	"time"
)

func TestLeaderFeedReachesEverySubscriber(t *testing.T) {
	from := make(chan bool)
	f := newLeaderFeed(from)
	defer f.close()
	a, b := f.subscribe(), f.subscribe()

	from <- true
	for name, ch := range map[string]<-chan bool{"a": a, "b": b} {
		select {
		case got := <-ch:
			if !got {
				t.Errorf("%s read %v, want true", name, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s heard nothing", name)
		}
	}

	// b does not read: it must find the newest change (true), not the first one it
	// missed (false).
	from <- false
	from <- true
	// An unbuffered send returns once the feed took the value; the feed publishes
	// it before it takes the next, so after one more send b holds the true above.
	from <- true
	if got := <-b; !got {
		t.Errorf("slow reader read %v, want the newest value true", got)
	}
}
