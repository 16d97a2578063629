// Package ui is the web dashboard managers serve under /ui/ on their TCP port: a
// read-only view of the GitOps sources, stacks, services, tasks and nodes, rendered on
// the server with html/template (pages work without JavaScript), with one small
// script that follows the manager's events over server-sent events and re-fetches the
// page's main section when something changes. Assets are embedded; nothing is fetched
// from elsewhere at runtime.
//
// A caller is an operator with an admin client certificate of the cluster, or a
// browser holding a session cookie got from a one-time login link (`berth ui token`).
// Tokens and sessions live in the issuing manager's memory (Sessions): a link and its
// session work on that manager only, and end when it restarts.
package ui
