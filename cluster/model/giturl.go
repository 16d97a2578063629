package model

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// ErrGitURL is wrapped by CheckGitURL's errors.
var ErrGitURL = errors.New("unsupported Git URL")

// scpLike matches Git's scp-like syntax, user@host:path, which has no scheme.
var scpLike = regexp.MustCompile(`^[A-Za-z0-9._~-]+@[A-Za-z0-9.-]+:`)

// gitSchemes are the transports of the applier's Git client (go-git).
var gitSchemes = []string{"https", "http", "ssh", "git", "file"}

// gitTransports says gitSchemes to a user.
const gitTransports = "https://, http://, ssh://, git:// and file:// URLs and git@host:path"

// CheckGitURL refuses what the applier could not fetch, so that a source with such a
// URL is refused when it is added rather than failing at its first sync.
func CheckGitURL(raw string) error {
	if scpLike.MatchString(raw) {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("%w %q: berth fetches Git over %s (a folder on the managers is a --dir source)", ErrGitURL, raw, gitTransports)
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case !slices.Contains(gitSchemes, scheme):
		return fmt.Errorf("%w %q: berth fetches Git over %s, not %s://", ErrGitURL, raw, gitTransports, scheme)
	case scheme != "file" && u.Host == "":
		return fmt.Errorf("%w %q: it names no host; write it as %s://HOST/PATH", ErrGitURL, raw, scheme)
	case scheme == "file" && u.Path == "":
		return fmt.Errorf("%w %q: it names no folder; write it as file:///PATH", ErrGitURL, raw)
	}
	return nil
}
