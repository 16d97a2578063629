package webhook_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"net/http"

	"github.com/berthd/berth/applier/webhook"
)

// Push payloads of each forge, trimmed to a few of their fields but otherwise as sent.

const (
	headRev    = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
	zeroRev    = "0000000000000000000000000000000000000000"
	sha256Rev  = "6f1ed002ab5595859014ebf0951522d9c8d4b4ac4b1e8b8f1c3b9a8e1f0e1c2d"
	testSecret = "s3cr3t-webhook-key"
)

// deliveries are the delivery ids the helpers below send, per sender.
var deliveries = map[webhook.Provider]string{
	webhook.GitHub:  "72d3162e-cc78-11e3-81ab-4c9367dc0958",
	webhook.GitLab:  "13792a34-cac6-4fda-95a8-c58e00a3954e",
	webhook.Gitea:   "e9b8b2a6-3f6a-4b8b-9c57-3f7d1f0c2a11",
	webhook.Forgejo: "0a5b4c1e-6a0b-4df5-8a3c-2f9b0d7c8e21",
}

const githubPush = `{
  "ref": "refs/heads/main",
  "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
  "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
  "created": false,
  "deleted": false,
  "forced": false,
  "base_ref": null,
  "compare": "https://github.com/acme/stacks/compare/6113728f27ae...0d1a26e67d8f",
  "commits": [{
    "id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
    "tree_id": "f9d2a07e9488b91af2641b26b9407fe22a451433",
    "distinct": true,
    "message": "web: bump image to 1.27",
    "timestamp": "2026-11-20T10:12:01+01:00",
    "author": {"name": "Mona Lisa", "email": "mona@example.com", "username": "mona"},
    "added": [], "removed": [], "modified": ["web/compose.yaml"]
  }],
  "head_commit": {"id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "message": "web: bump image to 1.27"},
  "repository": {"id": 1296269, "name": "stacks", "full_name": "acme/stacks", "default_branch": "main"},
  "pusher": {"name": "mona", "email": "mona@example.com"},
  "sender": {"login": "mona", "id": 583231, "type": "User"}
}`

const githubPushOtherBranch = `{
  "ref": "refs/heads/feature/cache",
  "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
  "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
  "created": true, "deleted": false, "forced": false,
  "repository": {"full_name": "acme/stacks", "default_branch": "main"},
  "sender": {"login": "mona"}
}`

const githubTagPush = `{
  "ref": "refs/tags/v1.4.0",
  "before": "0000000000000000000000000000000000000000",
  "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
  "created": true, "deleted": false, "forced": false, "base_ref": "refs/heads/main",
  "repository": {"full_name": "acme/stacks", "default_branch": "main"},
  "sender": {"login": "mona"}
}`

const githubDelete = `{
  "ref": "refs/heads/main",
  "before": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
  "after": "0000000000000000000000000000000000000000",
  "created": false, "deleted": true, "forced": false,
  "head_commit": null,
  "repository": {"full_name": "acme/stacks", "default_branch": "main"},
  "sender": {"login": "mona"}
}`

const githubPing = `{
  "zen": "Keep it logically awesome.",
  "hook_id": 471230912,
  "hook": {"type": "Repository", "id": 471230912, "name": "web", "active": true, "events": ["push"],
    "config": {"content_type": "json", "insecure_ssl": "0", "url": "https://berth.example.com/v1/hooks/stacks"}},
  "repository": {"full_name": "acme/stacks"},
  "sender": {"login": "mona"}
}`

const githubPullRequest = `{
  "action": "opened",
  "number": 42,
  "pull_request": {"title": "web: bump image", "head": {"ref": "feature/cache"}, "base": {"ref": "main"}},
  "repository": {"full_name": "acme/stacks"}
}`

const gitlabPush = `{
  "object_kind": "push",
  "event_name": "push",
  "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
  "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
  "ref": "refs/heads/main",
  "ref_protected": true,
  "checkout_sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
  "user_id": 4,
  "user_name": "John Smith",
  "user_username": "jsmith",
  "project_id": 15,
  "project": {"id": 15, "name": "stacks", "path_with_namespace": "acme/stacks", "default_branch": "main"},
  "commits": [{"id": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", "message": "db: raise shared_buffers",
    "title": "db: raise shared_buffers", "timestamp": "2026-11-20T11:03:21+00:00",
    "author": {"name": "John Smith", "email": "jsmith@example.com"}, "added": [], "modified": ["db/compose.yaml"], "removed": []}],
  "total_commits_count": 1,
  "repository": {"name": "stacks", "homepage": "https://gitlab.example.com/acme/stacks"}
}`

const gitlabTagPush = `{
  "object_kind": "tag_push",
  "event_name": "tag_push",
  "before": "0000000000000000000000000000000000000000",
  "after": "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
  "ref": "refs/tags/v1.0.0",
  "ref_protected": true,
  "checkout_sha": "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
  "project_id": 15,
  "commits": [],
  "total_commits_count": 0
}`

const gitlabDelete = `{
  "object_kind": "push",
  "event_name": "push",
  "before": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
  "after": "0000000000000000000000000000000000000000",
  "ref": "refs/heads/main",
  "checkout_sha": null,
  "project_id": 15,
  "commits": [],
  "total_commits_count": 0
}`

const gitlabMergeRequest = `{
  "object_kind": "merge_request",
  "event_type": "merge_request",
  "object_attributes": {"iid": 7, "source_branch": "feature/cache", "target_branch": "main", "action": "open"}
}`

const giteaPush = `{
  "ref": "refs/heads/main",
  "before": "28e1879d029cb852e4844d9c718537df08844e03",
  "after": "bffeb74224043ba2feb48d137756c8a9331c449a",
  "compare_url": "https://gitea.example.com/acme/stacks/compare/28e1879d029cb852e4844d9c718537df08844e03...bffeb74224043ba2feb48d137756c8a9331c449a",
  "commits": [{"id": "bffeb74224043ba2feb48d137756c8a9331c449a", "message": "proxy: add tls\n",
    "url": "https://gitea.example.com/acme/stacks/commit/bffeb74224043ba2feb48d137756c8a9331c449a",
    "author": {"name": "gitea", "email": "someone@gitea.io", "username": "gitea"}, "timestamp": "2026-11-20T12:31:00Z"}],
  "total_commits": 1,
  "head_commit": {"id": "bffeb74224043ba2feb48d137756c8a9331c449a", "message": "proxy: add tls\n"},
  "repository": {"id": 140, "name": "stacks", "full_name": "acme/stacks", "default_branch": "main"},
  "pusher": {"id": 1, "login": "gitea"},
  "sender": {"id": 1, "login": "gitea"}
}`

const forgejoPush = `{
  "ref": "refs/heads/main",
  "before": "bffeb74224043ba2feb48d137756c8a9331c449a",
  "after": "6f1ed002ab5595859014ebf0951522d9c8d4b4ac4b1e8b8f1c3b9a8e1f0e1c2d",
  "compare_url": "https://codeberg.example.org/acme/stacks/compare/bffeb742...6f1ed002",
  "commits": [{"id": "6f1ed002ab5595859014ebf0951522d9c8d4b4ac4b1e8b8f1c3b9a8e1f0e1c2d", "message": "queue: two replicas\n"}],
  "total_commits": 1,
  "repository": {"id": 9, "name": "stacks", "full_name": "acme/stacks", "object_format_name": "sha256", "default_branch": "main"},
  "pusher": {"login": "acme-bot"},
  "sender": {"login": "acme-bot"}
}`

func hmacHex(secret, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return hex.EncodeToString(mac.Sum(nil))
}

// githubHeaders are the headers GitHub sends, signed with secret over body.
func githubHeaders(event, body, secret string) http.Header {
	legacy := hmac.New(sha1.New, []byte(secret))
	legacy.Write([]byte(body))
	h := http.Header{}
	h.Set("User-Agent", "GitHub-Hookshot/5c2f7c1")
	h.Set("Content-Type", "application/json")
	h.Set("X-GitHub-Delivery", deliveries[webhook.GitHub])
	h.Set("X-GitHub-Event", event)
	h.Set("X-GitHub-Hook-ID", "471230912")
	h.Set("X-Hub-Signature", "sha1="+hex.EncodeToString(legacy.Sum(nil)))
	h.Set("X-Hub-Signature-256", "sha256="+hmacHex(secret, body))
	return h
}

// gitlabHeaders are the headers GitLab sends with token as its secret token.
func gitlabHeaders(event, token string) http.Header {
	h := http.Header{}
	h.Set("User-Agent", "GitLab/18.5.0")
	h.Set("Content-Type", "application/json")
	h.Set("X-Gitlab-Event", event)
	h.Set("X-Gitlab-Event-UUID", deliveries[webhook.GitLab])
	h.Set("X-Gitlab-Instance", "https://gitlab.example.com")
	h.Set("X-Gitlab-Token", token)
	return h
}

// giteaHeaders are the headers Gitea sends, GitHub's included.
func giteaHeaders(event, body, secret string) http.Header {
	sig := hmacHex(secret, body)
	h := http.Header{}
	h.Set("User-Agent", "Go-http-client/1.1")
	h.Set("Content-Type", "application/json")
	h.Set("X-Gitea-Delivery", deliveries[webhook.Gitea])
	h.Set("X-Gitea-Event", event)
	h.Set("X-Gitea-Event-Type", event)
	h.Set("X-Gitea-Signature", sig)
	h.Set("X-Gogs-Event", event)
	h.Set("X-Gogs-Signature", sig)
	h.Set("X-GitHub-Event", event)
	h.Set("X-Hub-Signature-256", "sha256="+sig)
	return h
}

// forgejoHeaders are the headers Forgejo sends, Gitea's and GitHub's included.
func forgejoHeaders(event, body, secret string) http.Header {
	h := giteaHeaders(event, body, secret)
	h.Set("X-Forgejo-Delivery", deliveries[webhook.Forgejo])
	h.Set("X-Forgejo-Event", event)
	h.Set("X-Forgejo-Event-Type", event)
	h.Set("X-Forgejo-Signature", hmacHex(secret, body))
	return h
}

// genericHeaders are the headers of a script calling the generic receiver.
func genericHeaders(body, secret string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Berth-Signature-256", "sha256="+hmacHex(secret, body))
	return h
}
