package model

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckGitURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want string // "" means accepted
	}{
		{"https://git.example.com/ops/stacks.git", ""},
		{"http://127.0.0.1:3000/ops/stacks.git", ""},
		{"ssh://git@git.example.com:2222/ops/stacks.git", ""},
		{"git@github.com:ops/stacks.git", ""},
		{"git://git.example.com/ops/stacks.git", ""},
		{"file:///srv/git/stacks.git", ""},
		{"HTTPS://git.example.com/ops/stacks.git", ""},
		{"ftp://x/y", "not ftp://"},
		{"s3://bucket/stacks", "not s3://"},
		{"/srv/git/stacks.git", "--dir"},
		{"git.example.com/ops/stacks.git", "--dir"},
		{"https:///ops/stacks.git", "no host"},
		{"file://", "no folder"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			err := CheckGitURL(tc.url)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (!errors.Is(err, ErrGitURL) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want ErrGitURL saying %q", err, tc.want)
			}
		})
	}
}
