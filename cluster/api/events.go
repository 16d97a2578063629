package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Event is one thing that happened in the cluster, as `berth events` prints it: derived
// from a raft-committed change, so every manager tells the same story.
type Event struct {
	// Index is the raft index of the change; Time when this manager applied it, or for
	// a leader change and a refused push when the manager that wrote it decided it.
	Index uint64    `json:"index"`
	Time  time.Time `json:"time"`
	// Type is service, task, node or source; Action what happened (create, update,
	// remove, rollback, a task's new state, a node's down/ready/drain..., a sync's
	// result).
	Type   string `json:"type"`
	Action string `json:"action"`
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	// Attributes say more: a task's service, node and error, a sync's revision...
	Attributes map[string]string `json:"attributes,omitempty"`
}

// EventTypes are the values of Event.Type.
var EventTypes = []string{"cluster", "node", "service", "source", "task"}

// EventFilter narrows GET /v1/events: events at or after Since and before Until (zero:
// unbounded), of the Types given (none: all).
type EventFilter struct {
	Since, Until time.Time
	Types        []string
}

// Events returns the events after q.Index that f selects, waiting up to q.Wait for one
// when there is none yet; pass the answer's Index back to follow.
func (c *Client) Events(ctx context.Context, f EventFilter, q Query) ([]*Event, QueryMeta, error) {
	v := url.Values{}
	if !f.Since.IsZero() {
		v.Set("since", strconv.FormatInt(f.Since.UnixNano(), 10))
	}
	if !f.Until.IsZero() {
		v.Set("until", strconv.FormatInt(f.Until.UnixNano(), 10))
	}
	if len(f.Types) > 0 {
		v.Set("type", strings.Join(f.Types, ","))
	}
	path := "/v1/events"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out []*Event
	h, err := c.do(ctx, http.MethodGet, addQuery(path, q), nil, &out)
	return out, queryMeta(h), err
}
