package model

import (
	"errors"
	"testing"
)

func TestParseNotifyTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want NotifyTarget
		bad  bool
	}{
		{in: "https://hooks.example.com/berth", want: NotifyTarget{NotifyGeneric, "https://hooks.example.com/berth"}},
		{in: "slack=https://hooks.slack.com/services/T/B/K", want: NotifyTarget{NotifySlack, "https://hooks.slack.com/services/T/B/K"}},
		{in: "generic=http://127.0.0.1:8080/hook?a=b", want: NotifyTarget{NotifyGeneric, "http://127.0.0.1:8080/hook?a=b"}},
		{in: "teams=https://example.com/x", bad: true},
		{in: "ftp://example.com/x", bad: true},
		{in: "hooks.example.com/berth", bad: true},
		{in: "https:///nohost", bad: true},
	} {
		got, err := ParseNotifyTarget(tc.in)
		if tc.bad {
			if !errors.Is(err, ErrNotify) {
				t.Errorf("ParseNotifyTarget(%q) = %v, want an error matching ErrNotify", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseNotifyTarget(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestMaskURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T000/B000/XXXX": "https://hooks.slack.com/services/***",
		"http://127.0.0.1:8080/hook":                      "http://127.0.0.1:8080/hook",
		"https://u:pw@example.com/hook?token=abc":         "https://u:***@example.com/hook?token=***",
		"not a url": "***",
	} {
		if got := MaskURL(in); got != want {
			t.Errorf("MaskURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCommitStatusEndpoint(t *testing.T) {
	const sha = "abc"
	for _, tc := range []struct {
		provider CommitStatusProvider
		base     string
		repo     string
		want     string
	}{
		{CommitStatusGitHub, "", "https://github.com/ops/stacks.git", "https://api.github.com/repos/ops/stacks/statuses/abc"},
		{CommitStatusGitHub, "", "git@ghe.example.com:ops/stacks.git", "https://ghe.example.com/api/v3/repos/ops/stacks/statuses/abc"},
		{CommitStatusGitLab, "", "https://gitlab.example.com/group/sub/stacks.git", "https://gitlab.example.com/api/v4/projects/group%2Fsub%2Fstacks/statuses/abc"},
		{CommitStatusGitea, "", "ssh://git@codeberg.org/ops/stacks.git", "https://codeberg.org/api/v1/repos/ops/stacks/statuses/abc"},
		{CommitStatusGitea, "http://127.0.0.1:3000/api/v1/", "http://127.0.0.1:9/ops/stacks.git", "http://127.0.0.1:3000/api/v1/repos/ops/stacks/statuses/abc"},
		{CommitStatusGitea, "", "https://git.example.com/stacks.git", ""},
		{CommitStatusGitHub, "", "file:///srv/stacks.git", ""},
	} {
		cs := &CommitStatus{Provider: tc.provider, URL: tc.base}
		got, err := cs.Endpoint(tc.repo, sha)
		if tc.want == "" {
			if !errors.Is(err, ErrNotify) {
				t.Errorf("%s Endpoint(%q) = %q, %v; want an error matching ErrNotify", tc.provider, tc.repo, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s Endpoint(%q) = %q, %v; want %q", tc.provider, tc.repo, got, err, tc.want)
		}
	}
}
