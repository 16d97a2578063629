package notify

import (
	"fmt"
	"time"

	"github.com/berthd/berth/cluster/model"
)

// Reason is what happened to a source, in Flux's words.
type Reason string

// Reasons of events.
const (
	// SyncSucceeded: a revision was applied.
	SyncSucceeded Reason = "SyncSucceeded"
	// SyncFailed: a revision could not be fetched, was invalid or was refused; the
	// last good one stays applied.
	SyncFailed Reason = "SyncFailed"
	// DriftDetected: the cluster no longer matches the applied revision.
	DriftDetected Reason = "DriftDetected"
	// RolloutStuck: services of an applied revision cannot converge (an update
	// paused or rolled back, tasks that cannot run).
	RolloutStuck Reason = "RolloutStuck"
	// RolloutSucceeded: every service of an applied revision converged.
	RolloutSucceeded Reason = "RolloutSucceeded"
)

// Severity is what Flux calls an event's severity: info or error.
func (r Reason) Severity() string {
	if r == SyncFailed || r == RolloutStuck || r == DriftDetected {
		return "error"
	}
	return "info"
}

// Event is one thing a source's notification targets are told.
type Event struct {
	Source   string
	Reason   Reason
	Revision string
	Message  string
	Time     time.Time
}

// document is berth's generic JSON document (README: Notifications).
type document struct {
	Source    string    `json:"source"`
	Reason    Reason    `json:"reason"`
	Severity  string    `json:"severity"`
	Revision  string    `json:"revision,omitempty"`
	Message   string    `json:"message"`
	Timestamp time.Time `json:"timestamp"`
	Reporter  string    `json:"reporter"`
}

// slackMessage is a Slack incoming webhook's message, with one attachment.
type slackMessage struct {
	Text        string            `json:"text"`
	Attachments []slackAttachment `json:"attachments"`
}

type slackAttachment struct {
	Color    string       `json:"color"`
	Title    string       `json:"title"`
	Text     string       `json:"text,omitempty"`
	Fields   []slackField `json:"fields,omitempty"`
	Footer   string       `json:"footer"`
	Ts       int64        `json:"ts"`
	Fallback string       `json:"fallback"`
}

type slackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

// EventDelivery is the POST of ev to the target, in the target's format.
func EventDelivery(t model.NotifyTarget, ev Event) (Delivery, error) {
	if t.Format == model.NotifySlack {
		return jsonDelivery(string(t.Format), t.URL, t.URL, slackOf(ev))
	}
	return jsonDelivery(string(model.NotifyGeneric), t.URL, t.URL, document{Source: ev.Source, Reason: ev.Reason,
		Severity: ev.Reason.Severity(), Revision: ev.Revision, Message: ev.Message, Timestamp: ev.Time.UTC(), Reporter: "berth"})
}

func slackOf(ev Event) slackMessage {
	color := "good"
	if ev.Reason.Severity() == "error" {
		color = "danger"
	}
	title := fmt.Sprintf("berth: source %s: %s", ev.Source, ev.Reason)
	var fields []slackField
	if ev.Revision != "" {
		fields = append(fields, slackField{Title: "Revision", Value: shortRevision(ev.Revision), Short: true})
	}
	fields = append(fields, slackField{Title: "Source", Value: ev.Source, Short: true})
	return slackMessage{Text: title, Attachments: []slackAttachment{{Color: color, Title: title, Text: ev.Message,
		Fields: fields, Footer: "berth", Ts: ev.Time.Unix(), Fallback: title + ": " + ev.Message}}}
}

// shortRevision is a commit's short SHA, as git shows it.
func shortRevision(rev string) string {
	if len(rev) == 40 || len(rev) == 64 {
		return rev[:7]
	}
	return rev
}
