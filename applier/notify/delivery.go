package notify

import (
	"encoding/json"
	"net/http"
)

// Delivery is one HTTP POST to make, built when a sync's result is known.
type Delivery struct {
	// Kind is what the metric counts it as: generic, slack, github, gitlab, gitea.
	Kind string
	// Queue names the queue it waits in: deliveries of one queue are made in order
	// (a commit's pending status before its success).
	Queue  string
	URL    string
	Header http.Header
	Body   []byte
}

// jsonDelivery is a POST of v as JSON to url, with the headers given as name, value pairs.
func jsonDelivery(kind, queue, url string, v any, header ...string) (Delivery, error) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return Delivery{}, err
	}
	h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"berth"}}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return Delivery{Kind: kind, Queue: queue, URL: url, Header: h, Body: append(body, '\n')}, nil
}
