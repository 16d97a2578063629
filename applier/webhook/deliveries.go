package webhook

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// Defaults of the replay window: forges redeliver within minutes (GitHub's "Redeliver"
// button, retries after a timeout); an hour of 10,000 deliveries is about 1.5 MB.
const (
	replayIDs = 10_000
	replayTTL = time.Hour
)

// deliveryKey names one delivery to one source. A digest keeps every entry the same
// small size whatever the length of the sender's header.
type deliveryKey [sha256.Size]byte

func keyOf(source string, p Provider, id string) deliveryKey {
	return sha256.Sum256([]byte(source + "\x00" + string(p) + "\x00" + id))
}

// deliveries remembers the deliveries a handler accepted: at most max of them, each
// for ttl, the oldest going first when full.
type deliveries struct {
	max int
	ttl time.Duration

	mu    sync.Mutex
	order *list.List // of *delivery, newest at the front
	byKey map[deliveryKey]*list.Element
}

type delivery struct {
	key deliveryKey
	at  time.Time
}

func newDeliveries(maxIDs int, ttl time.Duration) *deliveries {
	return &deliveries{max: maxIDs, ttl: ttl, order: list.New(), byKey: map[deliveryKey]*list.Element{}}
}

// seen records the delivery received at now and reports whether it was already there,
// and when it was first received. A replay does not extend the first delivery's window.
func (d *deliveries) seen(key deliveryKey, now time.Time) (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.byKey[key]; ok {
		first := e.Value.(*delivery).at
		if now.Sub(first) < d.ttl {
			return first, true
		}
		d.remove(e)
	}
	d.byKey[key] = d.order.PushFront(&delivery{key: key, at: now})
	for d.order.Len() > d.max {
		d.remove(d.order.Back())
	}
	return time.Time{}, false
}

// forget removes a delivery that was not acted on, so that the sender's retry counts.
func (d *deliveries) forget(key deliveryKey) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.byKey[key]; ok {
		d.remove(e)
	}
}

func (d *deliveries) remove(e *list.Element) {
	d.order.Remove(e)
	delete(d.byKey, e.Value.(*delivery).key)
}
