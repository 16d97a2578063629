package webhook_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/berthd/berth/applier/webhook"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		header  http.Header
		body    string
		secret  string
		want    *webhook.Event
		wantErr error
	}{
		// GitHub.
		{
			name:   "github push",
			header: githubHeaders("push", githubPush, testSecret),
			body:   githubPush,
			want:   &webhook.Event{Provider: webhook.GitHub, Kind: webhook.KindPush, Type: "push", Ref: "refs/heads/main", Revision: headRev},
		},
		{
			name:   "github push form encoded",
			header: formEncoded(githubHeaders("push", formBody(githubPush), testSecret)),
			body:   formBody(githubPush),
			want:   &webhook.Event{Provider: webhook.GitHub, Kind: webhook.KindPush, Type: "push", Ref: "refs/heads/main", Revision: headRev},
		},
		{
			name:   "github tag push",
			header: githubHeaders("push", githubTagPush, testSecret),
			body:   githubTagPush,
			want:   &webhook.Event{Provider: webhook.GitHub, Kind: webhook.KindPush, Type: "push", Ref: "refs/tags/v1.4.0", Revision: headRev},
		},
		{
			name:   "github branch deleted",
			header: githubHeaders("push", githubDelete, testSecret),
			body:   githubDelete,
			want:   &webhook.Event{Provider: webhook.GitHub, Kind: webhook.KindPush, Type: "push", Ref: "refs/heads/main", Deleted: true},
		},
		{
			name:   "github ping",
			header: githubHeaders("ping", githubPing, testSecret),
			body:   githubPing,
			want:   &webhook.Event{Provider: webhook.GitHub, Kind: webhook.KindPing, Type: "ping"},
		},
		{
			name:   "github other event is not decoded",
			header: githubHeaders("pull_request", githubPullRequest, testSecret),
			body:   githubPullRequest,
			want:   &webhook.Event{Provider: webhook.GitHub, Kind: webhook.KindOther, Type: "pull_request"},
		},
		{
			name:    "github wrong secret",
			header:  githubHeaders("push", githubPush, "another-secret"),
			body:    githubPush,
			wantErr: webhook.ErrBadSignature,
		},
		{
			name:    "github tampered body",
			header:  githubHeaders("push", githubPush, testSecret),
			body:    strings.Replace(githubPush, headRev, "1111111111111111111111111111111111111111", 1),
			wantErr: webhook.ErrBadSignature,
		},
		{
			name:    "github empty secret is never accepted",
			header:  githubHeaders("push", githubPush, ""),
			body:    githubPush,
			secret:  "-",
			wantErr: webhook.ErrBadSignature,
		},
		{
			name:    "github signature without sha256 prefix",
			header:  setHeader(githubHeaders("push", githubPush, testSecret), "X-Hub-Signature-256", hmacHex(testSecret, githubPush)),
			body:    githubPush,
			wantErr: webhook.ErrBadSignature,
		},
		{
			name:    "github signature not hex",
			header:  setHeader(githubHeaders("push", githubPush, testSecret), "X-Hub-Signature-256", "sha256=zz"),
			body:    githubPush,
			wantErr: webhook.ErrBadSignature,
		},
		{
			name:    "github legacy sha1 signature only",
			header:  delHeader(githubHeaders("push", githubPush, testSecret), "X-Hub-Signature-256"),
			body:    githubPush,
			wantErr: webhook.ErrNoSignature,
		},
		{
			name:    "signature checked before the body is decoded",
			header:  githubHeaders("push", githubPush, testSecret),
			body:    "{not json",
			wantErr: webhook.ErrBadSignature,
		},
		{
			name:    "github push not JSON",
			header:  githubHeaders("push", "{not json", testSecret),
			body:    "{not json",
			wantErr: webhook.ErrBadPayload,
		},
		{
			name:    "github push without ref",
			header:  githubHeaders("push", `{"after": "`+headRev+`"}`, testSecret),
			body:    `{"after": "` + headRev + `"}`,
			wantErr: webhook.ErrBadPayload,
		},
		{
			name:    "github form body without payload",
			header:  formEncoded(githubHeaders("push", "other=1", testSecret)),
			body:    "other=1",
			wantErr: webhook.ErrBadPayload,
		},

		// GitLab.
		{
			name:   "gitlab push",
			header: gitlabHeaders("Push Hook", testSecret),
			body:   gitlabPush,
			want: &webhook.Event{Provider: webhook.GitLab, Kind: webhook.KindPush, Type: "Push Hook",
				Ref: "refs/heads/main", Revision: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"},
		},
		{
			name:   "gitlab tag push",
			header: gitlabHeaders("Tag Push Hook", testSecret),
			body:   gitlabTagPush,
			want: &webhook.Event{Provider: webhook.GitLab, Kind: webhook.KindPush, Type: "Tag Push Hook",
				Ref: "refs/tags/v1.0.0", Revision: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"},
		},
		{
			name:   "gitlab branch deleted",
			header: gitlabHeaders("Push Hook", testSecret),
			body:   gitlabDelete,
			want:   &webhook.Event{Provider: webhook.GitLab, Kind: webhook.KindPush, Type: "Push Hook", Ref: "refs/heads/main", Deleted: true},
		},
		{
			name:   "gitlab checkout_sha when after is missing",
			header: gitlabHeaders("Push Hook", testSecret),
			body:   `{"ref": "refs/heads/main", "checkout_sha": "DA1560886D4F094C3E6C9EF40349F7D38B5D27D7"}`,
			want: &webhook.Event{Provider: webhook.GitLab, Kind: webhook.KindPush, Type: "Push Hook",
				Ref: "refs/heads/main", Revision: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"},
		},
		{
			name:   "gitlab merge request",
			header: gitlabHeaders("Merge Request Hook", testSecret),
			body:   gitlabMergeRequest,
			want:   &webhook.Event{Provider: webhook.GitLab, Kind: webhook.KindOther, Type: "Merge Request Hook"},
		},
		{
			name:    "gitlab wrong token",
			header:  gitlabHeaders("Push Hook", "s3cr3t-webhook-kez"),
			body:    gitlabPush,
			wantErr: webhook.ErrBadSignature,
		},
		{
			name:    "gitlab token prefix of the secret",
			header:  gitlabHeaders("Push Hook", testSecret[:4]),
			body:    gitlabPush,
			wantErr: webhook.ErrBadSignature,
		},
		{
			name:    "gitlab empty secret",
			header:  gitlabHeaders("Push Hook", "x"),
			body:    gitlabPush,
			secret:  "-",
			wantErr: webhook.ErrBadSignature,
		},
		{
			name:    "gitlab missing token",
			header:  delHeader(gitlabHeaders("Push Hook", testSecret), "X-Gitlab-Token"),
			body:    gitlabPush,
			wantErr: webhook.ErrNoSignature,
		},
		{
			name:    "gitlab revision not a commit id",
			header:  gitlabHeaders("Push Hook", testSecret),
			body:    `{"ref": "refs/heads/main", "after": "main"}`,
			wantErr: webhook.ErrBadPayload,
		},

		// Gitea and Forgejo, which also send GitHub's headers.
		{
			name:   "gitea push",
			header: giteaHeaders("push", giteaPush, testSecret),
			body:   giteaPush,
			want: &webhook.Event{Provider: webhook.Gitea, Kind: webhook.KindPush, Type: "push",
				Ref: "refs/heads/main", Revision: "bffeb74224043ba2feb48d137756c8a9331c449a"},
		},
		{
			name:   "gitea create event",
			header: giteaHeaders("create", `{"ref": "v1.0.0", "ref_type": "tag"}`, testSecret),
			body:   `{"ref": "v1.0.0", "ref_type": "tag"}`,
			want:   &webhook.Event{Provider: webhook.Gitea, Kind: webhook.KindOther, Type: "create"},
		},
		{
			name:    "gitea wrong secret",
			header:  giteaHeaders("push", giteaPush, "another-secret"),
			body:    giteaPush,
			wantErr: webhook.ErrBadSignature,
		},
		{
			name:    "gitea tampered body",
			header:  giteaHeaders("push", giteaPush, testSecret),
			body:    strings.Replace(giteaPush, "refs/heads/main", "refs/heads/prod", 1),
			wantErr: webhook.ErrBadSignature,
		},
		{
			name:    "gitea signature with sha256 prefix",
			header:  setHeader(giteaHeaders("push", giteaPush, testSecret), "X-Gitea-Signature", "sha256="+hmacHex(testSecret, giteaPush)),
			body:    giteaPush,
			wantErr: webhook.ErrBadSignature,
		},
		{
			name:   "forgejo push with sha256 object format",
			header: forgejoHeaders("push", forgejoPush, testSecret),
			body:   forgejoPush,
			want:   &webhook.Event{Provider: webhook.Forgejo, Kind: webhook.KindPush, Type: "push", Ref: "refs/heads/main", Revision: sha256Rev},
		},
		{
			name:    "forgejo wrong secret",
			header:  forgejoHeaders("push", forgejoPush, "another-secret"),
			body:    forgejoPush,
			wantErr: webhook.ErrBadSignature,
		},
		{
			name:    "forgejo empty secret",
			header:  forgejoHeaders("push", forgejoPush, ""),
			body:    forgejoPush,
			secret:  "-",
			wantErr: webhook.ErrBadSignature,
		},

		// Generic.
		{
			name:   "generic push",
			header: genericHeaders(`{"ref": "refs/heads/main", "after": "`+headRev+`"}`, testSecret),
			body:   `{"ref": "refs/heads/main", "after": "` + headRev + `"}`,
			want:   &webhook.Event{Provider: webhook.Generic, Kind: webhook.KindPush, Type: "push", Ref: "refs/heads/main", Revision: headRev},
		},
		{
			name:   "generic empty body",
			header: genericHeaders("", testSecret),
			body:   "",
			want:   &webhook.Event{Provider: webhook.Generic, Kind: webhook.KindPush, Type: "push"},
		},
		{
			name:   "generic revision without ref",
			header: genericHeaders(`{"after": "`+headRev+`"}`, testSecret),
			body:   `{"after": "` + headRev + `"}`,
			want:   &webhook.Event{Provider: webhook.Generic, Kind: webhook.KindPush, Type: "push", Revision: headRev},
		},
		{
			name:    "generic short ref",
			header:  genericHeaders(`{"ref": "main"}`, testSecret),
			body:    `{"ref": "main"}`,
			wantErr: webhook.ErrBadPayload,
		},
		{
			name:    "generic wrong secret",
			header:  genericHeaders(`{}`, "another-secret"),
			body:    `{}`,
			wantErr: webhook.ErrBadSignature,
		},
		{
			name:    "generic empty secret",
			header:  genericHeaders(`{}`, ""),
			body:    `{}`,
			secret:  "-",
			wantErr: webhook.ErrBadSignature,
		},
		{
			name:    "no signature header at all",
			header:  http.Header{"Content-Type": {"application/json"}, "X-Github-Event": {"push"}},
			body:    githubPush,
			wantErr: webhook.ErrNoSignature,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret := tt.secret
			switch secret {
			case "":
				secret = testSecret
			case "-":
				secret = ""
			}
			got, err := webhook.Parse(tt.header, []byte(tt.body), []byte(secret))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Parse() = %+v, %v; want error %v", got, err, tt.wantErr)
				}
				assertNoSecrets(t, err.Error(), tt.header)
				return
			}
			if err != nil {
				t.Fatalf("Parse(): %v", err)
			}
			want := *tt.want
			want.Delivery = deliveries[want.Provider]
			if *got != want {
				t.Errorf("Parse() = %+v; want %+v", *got, want)
			}
		})
	}
}

func TestEventBranch(t *testing.T) {
	tests := []struct {
		ref  string
		want string
	}{
		{"refs/heads/main", "main"},
		{"refs/heads/feature/cache", "feature/cache"},
		{"refs/tags/v1.0.0", ""},
		{"refs/remotes/origin/main", ""},
		{"main", ""},
		{"", ""},
	}
	for _, tt := range tests {
		e := &webhook.Event{Ref: tt.ref}
		if got := e.Branch(); got != tt.want {
			t.Errorf("Event{Ref: %q}.Branch() = %q; want %q", tt.ref, got, tt.want)
		}
	}
}

// assertNoSecrets fails when text quotes the test secret or a signature or token header.
func assertNoSecrets(t *testing.T, text string, h http.Header) {
	t.Helper()
	if strings.Contains(text, testSecret) {
		t.Errorf("%q quotes the secret", text)
	}
	for _, key := range []string{"X-Hub-Signature-256", "X-Gitlab-Token", "X-Gitea-Signature", "X-Forgejo-Signature", "X-Berth-Signature-256"} {
		if v := h.Get(key); len(v) > 4 && strings.Contains(text, v) {
			t.Errorf("%q quotes the %s header", text, key)
		}
	}
}

func formBody(payload string) string {
	return url.Values{"payload": {payload}}.Encode()
}

func formEncoded(h http.Header) http.Header {
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return h
}

func setHeader(h http.Header, key, value string) http.Header {
	h.Set(key, value)
	return h
}

func delHeader(h http.Header, key string) http.Header {
	h.Del(key)
	return h
}
