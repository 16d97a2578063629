// Package notify delivers what the applier has to say about its syncs: the events a
// source's notification targets receive (berth's JSON document, or Slack's form) and
// the commit statuses a forge shows on a revision (GitHub, GitLab, Gitea/Forgejo).
//
// The documents are built when a sync's result is known (events.go, status.go) and
// sent later by a Dispatcher (dispatcher.go): a queue per target, retries with
// exponential back-off, and never a sync waiting for a slow or dead endpoint.
package notify
