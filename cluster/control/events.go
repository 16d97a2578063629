package control

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// DefaultEventWindow is how many events a manager keeps.
const DefaultEventWindow = 10000

// EventLog is a manager's window of the cluster's events, derived from the changes its
// state applies. Every manager applies the same log, so each tells the same events
// and a new leader has what the old one had; a manager that restarts starts its
// window at what it applies next.
type EventLog struct {
	max int

	mu     sync.Mutex
	events []*api.Event // oldest first, at most max
	last   uint64       // the index of the last change read
	notify chan struct{}
}

// NewEventLog keeps the last max events (DefaultEventWindow when 0).
func NewEventLog(max int) *EventLog {
	if max <= 0 {
		max = DefaultEventWindow
	}
	return &EventLog{max: max, notify: make(chan struct{})}
}

// Run derives events from the changes of st's state until ctx ends, opening a new
// feed when a snapshot restore replaces the state.
func (l *EventLog) Run(ctx context.Context, st Store) {
	for ctx.Err() == nil {
		s := st.State()
		feed := s.Feed(64 * 1024)
		l.follow(ctx, s, feed)
		feed.Close()
	}
}

func (l *EventLog) follow(ctx context.Context, s *state.Store, feed *state.Feed) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.AbandonCh():
			return
		case <-feed.Notify():
		}
		batch, lost := feed.Take()
		now := time.Now().UTC()
		var out []*api.Event
		if lost {
			// The feed dropped changes it could not hold: say so rather than pretend.
			out = append(out, &api.Event{Time: now, Type: "cluster", Action: "events-lost"})
		}
		for _, ev := range batch {
			for _, ch := range ev.Changes {
				if e := eventOf(ch); e != nil {
					e.Index = ev.Index
					if e.Time.IsZero() {
						e.Time = now
					}
					out = append(out, e)
				}
			}
		}
		l.add(out, batch)
	}
}

func (l *EventLog) add(out []*api.Event, batch []state.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(batch) > 0 {
		l.last = batch[len(batch)-1].Index
	}
	for _, e := range out {
		if e.Index == 0 {
			e.Index = l.last
		}
	}
	l.events = append(l.events, out...)
	if over := len(l.events) - l.max; over > 0 {
		l.events = slices.Delete(l.events, 0, over)
	}
	close(l.notify)
	l.notify = make(chan struct{})
}

// Events returns the events after q.Index that f selects, waiting up to q.Wait for
// one when there is none, and the index to pass back.
func (l *EventLog) Events(ctx context.Context, f api.EventFilter, q api.Query) ([]*api.Event, api.QueryMeta, error) {
	wctx := ctx
	if q.Wait > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, q.Wait)
		defer cancel()
	}
	for {
		l.mu.Lock()
		out, last, notify := l.selectEvents(f, q.Index), l.last, l.notify
		l.mu.Unlock()
		if len(out) > 0 || q.Wait <= 0 {
			return out, api.QueryMeta{Index: last}, nil
		}
		select {
		case <-notify:
		case <-wctx.Done():
			return nil, api.QueryMeta{Index: last}, ctx.Err()
		}
	}
}

func (l *EventLog) selectEvents(f api.EventFilter, after uint64) []*api.Event {
	var out []*api.Event
	for _, e := range l.events {
		switch {
		case e.Index <= after,
			!f.Since.IsZero() && e.Time.Before(f.Since),
			!f.Until.IsZero() && !e.Time.Before(f.Until),
			len(f.Types) > 0 && !slices.Contains(f.Types, e.Type):
			continue
		}
		out = append(out, e)
	}
	return out
}

// eventOf is the event a change of a row tells, or nil when it tells none worth
// telling (a heartbeat, a counter).
func eventOf(ch state.Change) *api.Event {
	switch after := ch.After.(type) {
	case *model.Service:
		before, _ := ch.Before.(*model.Service)
		return serviceEvent(before, after)
	case *model.Task:
		before, _ := ch.Before.(*model.Task)
		return taskEvent(before, after)
	case *model.Node:
		before, _ := ch.Before.(*model.Node)
		return nodeEvent(before, after)
	case *model.Source:
		before, _ := ch.Before.(*model.Source)
		return sourceEvent(before, after)
	case *model.Cluster:
		before, _ := ch.Before.(*model.Cluster)
		if ev := leaderEvent(before, after); ev != nil {
			return ev
		}
		return clusterEvent(before, after)
	case nil:
		return removedEvent(ch.Before)
	}
	return nil
}

func serviceEvent(before, after *model.Service) *api.Event {
	e := &api.Event{Type: "service", ID: after.ID, Name: after.Name, Attributes: map[string]string{"image": after.Spec.Image}}
	switch {
	case before == nil:
		e.Action = "create"
	case before.UpdateStatus.State != after.UpdateStatus.State && after.UpdateStatus.State != "":
		e.Action = "update-" + string(after.UpdateStatus.State)
		if after.UpdateStatus.Message != "" {
			e.Attributes["message"] = after.UpdateStatus.Message
		}
	case before.SpecVersion != after.SpecVersion:
		e.Action = "update"
	default:
		return nil
	}
	return e
}

func taskEvent(before, after *model.Task) *api.Event {
	if before != nil && before.Status.State == after.Status.State {
		return nil
	}
	attrs := map[string]string{"service": after.ServiceName, "node": after.NodeID}
	if after.Slot > 0 {
		attrs["slot"] = strconv.FormatUint(after.Slot, 10)
	}
	if after.Status.Err != "" {
		attrs["error"] = after.Status.Err
	}
	return &api.Event{Type: "task", Action: string(after.Status.State), ID: after.ID, Name: after.Name(), Attributes: attrs}
}

func nodeEvent(before, after *model.Node) *api.Event {
	e := &api.Event{Type: "node", ID: after.ID, Name: after.Hostname}
	switch {
	case before == nil:
		e.Action = "join"
	case before.Status.State != after.Status.State:
		e.Action = string(after.Status.State)
	case before.Availability != after.Availability:
		e.Action = string(after.Availability)
	case before.Role != after.Role && after.Role == model.RoleManager:
		e.Action = "promote"
	case before.Role != after.Role:
		e.Action = "demote"
	default:
		return nil
	}
	return e
}

// clusterEvent tells a root CA rotation: when it starts and when every node has
// rotated.
func clusterEvent(before, after *model.Cluster) *api.Event {
	e := &api.Event{Type: "cluster", ID: after.ID, Name: after.ID}
	switch {
	case before == nil:
		return nil
	case before.RootRotation == nil && after.RootRotation != nil:
		e.Action = "ca-rotate"
		e.Attributes = map[string]string{"root": after.RootRotation.Digest}
	case before.RootRotation != nil && after.RootRotation == nil:
		e.Action = "ca-rotated"
		e.Attributes = map[string]string{"root": before.RootRotation.Digest}
	default:
		return nil
	}
	return e
}

// sourceEvent tells a sync by the record it added, a push by its revision, and drift
// by the status it sets.
func sourceEvent(before, after *model.Source) *api.Event {
	e := &api.Event{Type: "source", ID: after.Name, Name: after.Name, Attributes: map[string]string{}}
	switch {
	case before == nil:
		e.Action = "create"
	case len(after.History) > 0 && (len(before.History) == 0 || after.History[len(after.History)-1] != before.History[len(before.History)-1]):
		rec := after.History[len(after.History)-1]
		e.Action = "sync-" + string(rec.Result)
		e.Attributes["revision"] = rec.Revision
		if rec.Message != "" {
			e.Attributes["message"] = rec.Message
		}
	case before.PushedRevision != after.PushedRevision:
		e.Action = "push"
		e.Attributes["revision"] = after.PushedRevision
	case !before.RejectedPush.At.Equal(after.RejectedPush.At) || before.RejectedPush.Revision != after.RejectedPush.Revision:
		rej := after.RejectedPush
		e.Action, e.Time = "push-rejected", rej.At
		e.Attributes["revision"], e.Attributes["reason"] = rej.Revision, rej.Reason
	case before.Status != after.Status && after.Status == model.SyncOutOfSync:
		e.Action = "drift"
		e.Attributes["message"] = after.Message
	default:
		return nil
	}
	return e
}

// leaderEvent tells a manager taking the lead, from the record it committed: as a
// node event, since Docker has no event for it and `-f type=node` is where one looks.
// Its time is the new leader's, not when this manager applied it.
func leaderEvent(before, after *model.Cluster) *api.Event {
	var prev model.LeaderRecord
	if before != nil {
		prev = before.Leader
	}
	l := after.Leader
	if l.NodeID == "" || (l.NodeID == prev.NodeID && l.Term == prev.Term && l.Since.Equal(prev.Since)) {
		return nil
	}
	attrs := map[string]string{"term": strconv.FormatUint(l.Term, 10)}
	if prev.NodeID != "" {
		attrs["previous"] = prev.NodeID
	}
	return &api.Event{Type: "node", Action: "leader", ID: l.NodeID, Name: l.Hostname, Time: l.Since, Attributes: attrs}
}

func removedEvent(row any) *api.Event {
	switch r := row.(type) {
	case *model.Service:
		return &api.Event{Type: "service", Action: "remove", ID: r.ID, Name: r.Name}
	case *model.Node:
		return &api.Event{Type: "node", Action: "remove", ID: r.ID, Name: r.Hostname}
	case *model.Source:
		return &api.Event{Type: "source", Action: "remove", ID: r.Name, Name: r.Name}
	}
	return nil
}

// ErrNoEvents: this Control keeps no event log.
var ErrNoEvents = errors.New("this manager keeps no events")

// Events serves GET /v1/events from the manager's window.
func (c *Control) Events(ctx context.Context, f api.EventFilter, q api.Query) ([]*api.Event, api.QueryMeta, error) {
	if c.events == nil {
		return nil, api.QueryMeta{}, ErrNoEvents
	}
	return c.events.Events(ctx, f, q)
}
