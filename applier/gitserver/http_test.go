package gitserver_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/berthd/berth/applier/gitserver"
)

// pkt encodes lines as pkt-lines; "" is a flush-pkt.
func pkt(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		if l == "" {
			b.WriteString("0000")
			continue
		}
		fmt.Fprintf(&b, "%04x%s", len(l)+4, l)
	}
	return b.String()
}

// emptyPack is a pack of no objects, what Git sends when the pushed objects are there.
func emptyPack() string {
	header := "PACK\x00\x00\x00\x02\x00\x00\x00\x00"
	sum := sha1.Sum([]byte(header))
	return header + string(sum[:])
}

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := io.WriteString(zw, s); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestHTTPRequests(t *testing.T) {
	s := newServer(t, 64<<10)
	work := s.clone(t)
	tip := s.commit(t, work, "first", map[string]string{"compose.yaml": "services: {web: {image: nginx}}\n"})
	s.push(t, work, true, "origin", "main")
	unknown := strings.Repeat("ab", 20)
	const (
		uploadType  = "application/x-git-upload-pack-request"
		receiveType = "application/x-git-receive-pack-request"
	)

	tests := []struct {
		name        string
		method      string
		path        string
		noAuth      bool
		contentType string
		encoding    string
		body        string
		wantStatus  int
		wantHeader  [2]string // name and value
		wantBody    []string
	}{
		{
			name: "advertise fetch", method: "GET", path: "/git/stacks.git/info/refs?service=git-upload-pack",
			wantStatus: 200, wantHeader: [2]string{"Content-Type", "application/x-git-upload-pack-advertisement"},
			wantBody: []string{"# service=git-upload-pack\n0000", tip + " HEAD\x00", "symref=HEAD:refs/heads/main", tip + " refs/heads/main\n"},
		},
		{
			name: "advertise push without .git", method: "GET", path: "/git/stacks/info/refs?service=git-receive-pack",
			wantStatus: 200, wantHeader: [2]string{"Content-Type", "application/x-git-receive-pack-advertisement"},
			wantBody: []string{"# service=git-receive-pack\n0000", tip + " refs/heads/main\x00", "report-status", "side-band-64k", "no-thin"},
		},
		{
			name: "no credentials", method: "GET", path: "/git/stacks.git/info/refs?service=git-upload-pack", noAuth: true,
			wantStatus: 401, wantHeader: [2]string{"WWW-Authenticate", `Basic realm="berth"`}, wantBody: []string{"push token"},
		},
		{
			name: "unknown repository", method: "GET", path: "/git/nope.git/info/refs?service=git-upload-pack",
			wantStatus: 404, wantBody: []string{"repository nope not found"},
		},
		{name: "outside /git/", method: "GET", path: "/stacks.git/info/refs", wantStatus: 404},
		{name: "path escape", method: "GET", path: "/git/..%2fetc/info/refs?service=git-upload-pack", wantStatus: 404},
		{name: "unknown endpoint", method: "GET", path: "/git/stacks.git/objects/info/packs", wantStatus: 404},
		{
			name: "dumb protocol", method: "GET", path: "/git/stacks.git/info/refs",
			wantStatus: 400, wantBody: []string{"smart HTTP"},
		},
		{
			name: "unknown service", method: "GET", path: "/git/stacks.git/info/refs?service=git-upload-archive",
			wantStatus: 400, wantBody: []string{"unknown service"},
		},
		{
			name: "GET a service", method: "GET", path: "/git/stacks.git/git-upload-pack",
			wantStatus: 405, wantHeader: [2]string{"Allow", "POST"},
		},
		{
			name: "wrong content type", method: "POST", path: "/git/stacks.git/git-upload-pack", contentType: "text/plain",
			wantStatus: 415, wantBody: []string{uploadType},
		},
		{
			name: "unknown content encoding", method: "POST", path: "/git/stacks.git/git-upload-pack", contentType: uploadType,
			encoding: "br", wantStatus: 415, wantBody: []string{"Content-Encoding"},
		},
		{
			name: "garbage fetch", method: "POST", path: "/git/stacks.git/git-upload-pack", contentType: uploadType,
			body: "hello", wantStatus: 400, wantBody: []string{"decode wants"},
		},
		{
			name: "garbage after the wants", method: "POST", path: "/git/stacks.git/git-upload-pack", contentType: uploadType,
			body: pkt("want "+tip+"\n", "", "hello\n"), wantStatus: 400, wantBody: []string{`unexpected line "hello"`},
		},
		{
			name: "capability not advertised", method: "POST", path: "/git/stacks.git/git-upload-pack", contentType: uploadType,
			body: pkt("want "+tip+" multi_ack thin-pack\n", "", "done\n"), wantStatus: 400, wantBody: []string{"capability multi_ack was not advertised"},
		},
		{
			name: "shallow fetch", method: "POST", path: "/git/stacks.git/git-upload-pack", contentType: uploadType,
			body: pkt("want "+tip+"\n", "deepen 1\n", "", "done\n"), wantStatus: 400, wantBody: []string{"--depth"},
		},
		{
			name: "gzipped fetch", method: "POST", path: "/git/stacks.git/git-upload-pack", contentType: uploadType,
			encoding: "gzip", body: gzipped(t, pkt("want "+tip+" ofs-delta\n", "", "done\n")),
			wantStatus: 200, wantHeader: [2]string{"Content-Type", "application/x-git-upload-pack-result"},
			wantBody: []string{"0008NAK\nPACK"},
		},
		{
			name: "broken gzip", method: "POST", path: "/git/stacks.git/git-upload-pack", contentType: uploadType,
			encoding: "gzip", body: "not gzip", wantStatus: 400, wantBody: []string{"gzip"},
		},
		{
			name: "negotiation round", method: "POST", path: "/git/stacks.git/git-upload-pack", contentType: uploadType,
			body:       pkt("want "+tip+" multi_ack_detailed side-band-64k\n", "", "have "+unknown+"\n", "have "+tip+"\n", ""),
			wantStatus: 200, wantBody: []string{pkt("ACK "+tip+" common\n", "NAK\n")},
		},
		{
			name: "want of an object no reference leads to", method: "POST", path: "/git/stacks.git/git-upload-pack", contentType: uploadType,
			body: pkt("want "+unknown+"\n", "", "done\n"), wantStatus: 200, wantBody: []string{"ERR upload-pack: not our ref " + unknown},
		},
		{
			name: "request over the limit", method: "POST", path: "/git/stacks.git/git-upload-pack", contentType: uploadType,
			body: pkt("want "+tip+"\n", "") + strings.Repeat(pkt("have "+unknown+"\n"), 2000), wantStatus: 413, wantBody: []string{"limit of 65536 bytes"},
		},
		{
			name: "gzip bomb", method: "POST", path: "/git/stacks.git/git-upload-pack", contentType: uploadType,
			encoding: "gzip", body: gzipped(t, pkt("want "+tip+"\n", "")+strings.Repeat(pkt("have "+unknown+"\n"), 2000)),
			wantStatus: 413,
		},
		{
			name: "push probe", method: "POST", path: "/git/stacks.git/git-receive-pack", contentType: receiveType,
			body: "0000", wantStatus: 200, wantHeader: [2]string{"Content-Type", "application/x-git-receive-pack-result"},
		},
		{
			name: "garbage push", method: "POST", path: "/git/stacks.git/git-receive-pack", contentType: receiveType,
			body: "0010not a command", wantStatus: 400, wantBody: []string{"decode commands"},
		},
		{
			name: "delete with a stale old value", method: "POST", path: "/git/stacks.git/git-receive-pack", contentType: receiveType,
			body:       pkt(unknown+" "+plumbing.ZeroHash.String()+" refs/heads/main\x00report-status\n", ""),
			wantStatus: 200, wantBody: []string{pkt("unpack ok\n", "ng refs/heads/main stale info: the reference is now at "+tip+"; fetch first\n", "")},
		},
		{
			name: "push of a missing object", method: "POST", path: "/git/stacks.git/git-receive-pack", contentType: receiveType,
			body:       pkt(tip+" "+unknown+" refs/heads/main\x00report-status\n", "") + emptyPack(),
			wantStatus: 200, wantBody: []string{"ng refs/heads/main missing necessary object " + unknown},
		},
		{
			name: "corrupt pack", method: "POST", path: "/git/stacks.git/git-receive-pack", contentType: receiveType,
			body:       pkt(tip+" "+unknown+" refs/heads/main\x00report-status\n", "") + "this is no pack",
			wantStatus: 200, wantBody: []string{"ng refs/heads/main unpacker error"},
		},
		{
			name: "push to a name outside refs/", method: "POST", path: "/git/stacks.git/git-receive-pack", contentType: receiveType,
			body:       pkt(plumbing.ZeroHash.String()+" "+tip+" HEAD\x00report-status\n", "") + emptyPack(),
			wantStatus: 200, wantBody: []string{"ng HEAD invalid reference name"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pre, _ := s.hooks.calls()
			req, err := http.NewRequestWithContext(t.Context(), tt.method, s.url+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.noAuth {
				req.SetBasicAuth(user, token)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.encoding != "" {
				req.Header.Set("Content-Encoding", tt.encoding)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d; body:\n%q", resp.StatusCode, tt.wantStatus, body)
			}
			if name := tt.wantHeader[0]; name != "" && resp.Header.Get(name) != tt.wantHeader[1] {
				t.Errorf("%s = %q, want %q", name, resp.Header.Get(name), tt.wantHeader[1])
			}
			for _, want := range tt.wantBody {
				if !strings.Contains(string(body), want) {
					t.Errorf("body lacks %q:\n%q", want, body)
				}
			}
			if got, _ := s.hooks.calls(); got != pre {
				t.Errorf("PreReceive ran for a request the handler refuses itself")
			}
			if got := s.ref(t, "refs/heads/main"); got != tip {
				t.Errorf("main is %q, want it kept at %s", got, tip)
			}
		})
	}
}

// A push bigger than Git's http.postBuffer is probed first and then sent chunked.
func TestLargePush(t *testing.T) {
	tests := []struct {
		name     string
		maxBytes int64
		wantOK   bool
	}{
		{name: "under the limit", wantOK: true},
		{name: "over the limit", maxBytes: 1 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, tt.maxBytes)
			work := s.clone(t)
			sha := s.commit(t, work, "big", map[string]string{"blob.bin": rand.Text() + string(randomBytes(t, 3<<20))})
			stderr := s.push(t, work, tt.wantOK, "origin", "main")
			want := ""
			if tt.wantOK {
				want = sha
			} else if !strings.Contains(stderr, "413") {
				t.Errorf("git push stderr lacks the 413:\n%s", stderr)
			}
			if got := s.ref(t, "refs/heads/main"); got != want {
				t.Errorf("main is %q, want %q", got, want)
			}
		})
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// go-git fetches without multi_ack: the first common commit ends the negotiation.
func TestGoGitClient(t *testing.T) {
	s := newServer(t, 0)
	pusher := s.clone(t)
	first := s.commit(t, pusher, "first", map[string]string{"compose.yaml": "services: {web: {image: nginx}}\n"})
	s.push(t, pusher, true, "origin", "main")

	ctx := context.Background()
	auth := &githttp.BasicAuth{Username: user, Password: token}
	dir := filepath.Join(t.TempDir(), "clone")
	repo, err := git.PlainCloneContext(ctx, dir, true, &git.CloneOptions{URL: s.remote("stacks", ""), Auth: auth})
	if err != nil {
		t.Fatalf("go-git clone: %v", err)
	}
	if head, err := repo.Head(); err != nil || head.Hash().String() != first {
		t.Fatalf("the go-git clone's HEAD = %v (err %v), want %s", head, err, first)
	}

	second := s.commit(t, pusher, "second", map[string]string{"compose.yaml": "services: {web: {image: caddy}}\n"})
	s.push(t, pusher, true, "origin", "main")
	err = repo.FetchContext(ctx, &git.FetchOptions{Auth: auth, RefSpecs: []config.RefSpec{"+refs/heads/*:refs/heads/*"}})
	if err != nil {
		t.Fatalf("go-git fetch: %v", err)
	}
	ref, err := repo.Reference(plumbing.NewBranchReferenceName("main"), true)
	if err != nil || ref.Hash().String() != second {
		t.Fatalf("after the go-git fetch main = %v (err %v), want %s", ref, err, second)
	}
	commit, err := repo.CommitObject(ref.Hash())
	if err != nil {
		t.Fatal(err)
	}
	file, err := commit.File("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := file.Contents(); !strings.Contains(got, "caddy") {
		t.Errorf("compose.yaml fetched by go-git = %q, want caddy", got)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
}

// Pushes to one repository do not interleave: a push that arrives while another is in
// PreReceive waits for it, and then finds its old value stale.
func TestConcurrentPushesToOneRepository(t *testing.T) {
	s := newServer(t, 0)
	a := s.clone(t)
	s.commit(t, a, "base", nil)
	s.push(t, a, true, "origin", "main")
	b := s.clone(t)
	fromA := s.commit(t, a, "from a", map[string]string{"a": "a"})
	s.commit(t, b, "from b", map[string]string{"b": "b"})

	entered := make(chan struct{})
	release := make(chan struct{})
	var sawB shared[bool]
	s.hooks.set(func(ctx context.Context, p *gitserver.Push) error {
		if p.Updates[0].New.String() != fromA {
			sawB.set(true)
			return nil
		}
		close(entered)
		<-release
		return nil
	}, nil)
	pushed := make(chan string, 2)
	push := func(dir string) {
		_, stderr, _ := s.run(dir, nil, "push", "origin", "main")
		pushed <- stderr
	}
	go push(a)
	<-entered
	for len(s.posts) > 0 {
		<-s.posts
	}
	go push(b)
	<-s.posts // B's push reached the server while A's is in PreReceive.
	close(release)
	stderr := <-pushed + <-pushed

	if sawB.get() {
		t.Error("PreReceive ran for B's push, whose old value A's push made stale")
	}
	if !strings.Contains(stderr, "main -> main (stale info: the reference is now at "+fromA) {
		t.Errorf("B's push was not rejected as stale:\n%s", stderr)
	}
	if got := s.ref(t, "refs/heads/main"); got != fromA {
		t.Errorf("main is %q, want A's %s", got, fromA)
	}
}
