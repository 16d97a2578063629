package model

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// ErrNotify is wrapped by the errors of a notification setting berth cannot use.
var ErrNotify = errors.New("bad notification setting")

// notifyError is a setting refused, in words for the user; it matches ErrNotify.
type notifyError struct{ msg string }

func (e *notifyError) Error() string        { return e.msg }
func (e *notifyError) Is(target error) bool { return target == ErrNotify }

func notifyErrorf(format string, args ...any) error {
	return &notifyError{fmt.Sprintf(format, args...)}
}

// NotifyFormat is the form of the document a notification target receives.
type NotifyFormat string

// Notification formats, as `--notify` names them before '='.
const (
	// NotifyGeneric is berth's own JSON document (README: Notifications).
	NotifyGeneric NotifyFormat = "generic"
	// NotifySlack is what Slack's incoming webhooks take (and Mattermost's,
	// Rocket.Chat's, Discord's /slack endpoint).
	NotifySlack NotifyFormat = "slack"
)

// maxNotifyURL bounds a target's URL, which every manager keeps in the source's row.
const maxNotifyURL = 2048

// MaxNotifyTargets bounds the targets of one source, or of the cluster.
const MaxNotifyTargets = 16

// NotifyTarget is where sync results are POSTed.
type NotifyTarget struct {
	Format NotifyFormat `json:"format"`
	URL    string       `json:"url"`
}

// ParseNotifyTarget reads a `--notify` value: URL for the generic document, or
// FORMAT=URL (slack=https://hooks.slack.com/services/...).
func ParseNotifyTarget(s string) (NotifyTarget, error) {
	t := NotifyTarget{Format: NotifyGeneric, URL: s}
	if f, u, ok := strings.Cut(s, "="); ok && !strings.Contains(f, "://") {
		t = NotifyTarget{Format: NotifyFormat(f), URL: u}
	}
	return t, t.Check()
}

// Check refuses a target berth could not deliver to.
func (t NotifyTarget) Check() error {
	if t.Format != NotifyGeneric && t.Format != NotifySlack {
		return notifyErrorf("--notify %s: unknown format %q: give URL (berth's JSON document) or slack=URL", t.Masked(), t.Format)
	}
	return checkHTTPURL("--notify", t.URL)
}

// String is the target as `--notify` takes it.
func (t NotifyTarget) String() string {
	if t.Format == NotifySlack {
		return string(t.Format) + "=" + t.URL
	}
	return t.URL
}

// Masked is the target with what may be a secret in its URL hidden: every path
// segment after the first (a Slack webhook's key), query values and any password.
func (t NotifyTarget) Masked() NotifyTarget {
	t.URL = MaskURL(t.URL)
	return t
}

// MaskURL hides what may be a secret in a webhook URL (see NotifyTarget.Masked).
func MaskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "***"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "***")
	}
	segs := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(segs) > 1 {
		u.Path = "/" + segs[0] + "/***"
		u.RawPath = ""
	}
	q := u.Query()
	for k := range q {
		q[k] = []string{"***"}
	}
	u.RawQuery = q.Encode()
	return strings.ReplaceAll(u.String(), "%2A%2A%2A", "***")
}

// checkHTTPURL refuses what is not an absolute http(s) URL with a host.
func checkHTTPURL(flag, raw string) error {
	u, err := url.Parse(raw)
	switch {
	case len(raw) > maxNotifyURL:
		return notifyErrorf("%s: the URL is %d bytes, over %d", flag, len(raw), maxNotifyURL)
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return notifyErrorf("%s %q: give an http:// or https:// URL", flag, MaskURL(raw))
	case strings.ContainsAny(raw, " \t\r\n"):
		return notifyErrorf("%s %q: the URL holds white space", flag, MaskURL(raw))
	}
	return nil
}

// CommitStatusProvider is the Git forge whose commit status API berth calls.
type CommitStatusProvider string

// Commit status providers, as `--commit-status` names them.
const (
	CommitStatusGitHub CommitStatusProvider = "github"
	CommitStatusGitLab CommitStatusProvider = "gitlab"
	// CommitStatusGitea is Gitea's API, which Forgejo keeps.
	CommitStatusGitea CommitStatusProvider = "gitea"
)

// CommitStatus is how the revisions a source applies get a commit status.
type CommitStatus struct {
	Provider CommitStatusProvider `json:"provider"`
	// URL is the API's base URL (https://HOST/api/v1 for Gitea), when the one
	// derived from the source's URL is not it.
	URL string `json:"url,omitempty"`
	// TokenRef names the cluster secret holding the API token.
	TokenRef string `json:"token_ref,omitempty"`
}

// Check refuses a provider berth does not know, or a bad --commit-status-url.
func (c *CommitStatus) Check() error {
	switch c.Provider {
	case CommitStatusGitHub, CommitStatusGitLab, CommitStatusGitea:
	default:
		return notifyErrorf("--commit-status %q: give github, gitlab or gitea (also Forgejo)", c.Provider)
	}
	if c.URL == "" {
		return nil
	}
	return checkHTTPURL("--commit-status-url", c.URL)
}

// Endpoint is the URL commit statuses of sha are POSTed to, for the repository at
// repoURL (the source's URL).
func (c *CommitStatus) Endpoint(repoURL, sha string) (string, error) {
	host, repo, err := repoHostPath(repoURL)
	if err != nil {
		return "", err
	}
	base := strings.TrimSuffix(c.URL, "/")
	switch c.Provider {
	case CommitStatusGitLab:
		if base == "" {
			base = "https://" + host + "/api/v4"
		}
		return base + "/projects/" + url.PathEscape(repo) + "/statuses/" + sha, nil
	case CommitStatusGitHub, CommitStatusGitea:
		owner, name, ok := strings.Cut(repo, "/")
		if !ok || strings.Contains(name, "/") {
			return "", notifyErrorf("the repository %s is not OWNER/REPO, as %s's API wants it", repo, c.Provider)
		}
		if base == "" {
			base = "https://" + host + "/api/v1"
			if c.Provider == CommitStatusGitHub {
				base = "https://" + host + "/api/v3"
				if host == "github.com" {
					base = "https://api.github.com"
				}
			}
		}
		return base + "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name) + "/statuses/" + sha, nil
	}
	return "", c.Check()
}

// repoHostPath splits a Git URL (https://, ssh://, git@host:path) into its host and
// its repository's path without ".git".
func repoHostPath(repoURL string) (host, repo string, err error) {
	if scpLike.MatchString(repoURL) {
		at, path, _ := strings.Cut(repoURL[strings.Index(repoURL, "@")+1:], ":")
		host, repo = at, path
	} else if u, perr := url.Parse(repoURL); perr == nil && u.Host != "" {
		host, repo = u.Hostname(), u.Path
	}
	repo = strings.TrimSuffix(strings.Trim(repo, "/"), ".git")
	if host == "" || repo == "" {
		return "", "", notifyErrorf("commit statuses need the repository's host and path in the source's URL (https://HOST/OWNER/REPO.git); %q has not both", repoURL)
	}
	return host, repo, nil
}

// SourceNotify is where a source's sync results go besides its history.
type SourceNotify struct {
	Notify       []NotifyTarget `json:"notify,omitempty"`
	CommitStatus *CommitStatus  `json:"commit_status,omitempty"`
}

// Copy returns a deep copy.
func (n SourceNotify) Copy() SourceNotify {
	n.Notify = slices.Clone(n.Notify)
	if n.CommitStatus != nil {
		cs := *n.CommitStatus
		n.CommitStatus = &cs
	}
	return n
}

// Masked is n as clients see it: URLs masked (NotifyTarget.Masked).
func (n SourceNotify) Masked() SourceNotify {
	n = n.Copy()
	for i := range n.Notify {
		n.Notify[i] = n.Notify[i].Masked()
	}
	return n
}

// CheckNotifyTargets checks each target and that there are not too many, nor one twice.
func CheckNotifyTargets(ts []NotifyTarget) error {
	if len(ts) > MaxNotifyTargets {
		return notifyErrorf("%d --notify targets, over %d", len(ts), MaxNotifyTargets)
	}
	seen := map[string]bool{}
	for _, t := range ts {
		if err := t.Check(); err != nil {
			return err
		}
		if seen[t.URL] {
			return notifyErrorf("--notify %s is given twice", t.Masked())
		}
		seen[t.URL] = true
	}
	return nil
}
