package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/berthd/berth/internal/gittest"
	"github.com/berthd/berth/internal/testenv"
)

// shopStack is a stack of three replicas and one that waits for a node labelled gpu.
const shopStack = `services:
  web:
    image: nginx:1
    deploy:
      replicas: 3
  trainer:
    image: trainer:1
    deploy:
      placement:
        constraints: [node.labels.gpu == true]
`

// TestUIProcesses loads the web dashboard of a live one-node cluster (simulated agent)
// in headless Chromium: a login link from `berth ui token`, the source's status word
// (Degraded: a service waits for a node labelled gpu),
// a service's 3/3, the reason a task waits, and a scale that shows up without a
// reload. With BERTH_UI_SCREENSHOTS=DIR it saves full-page screenshots there.
func TestUIProcesses(t *testing.T) {
	c := newProcClusterArgs(t, testDaemonArgs, "node-1")
	browser := chromium(t)
	c.start("node-1")
	c.initCluster("node-1", nil, nil)

	repo := gittest.New(t)
	repo.Write(map[string]string{"stacks/shop/compose.yaml": shopStack})
	rev := repo.Commit("shop").String()
	c.must("node-1", "source", "add", "infra", "--url", "file://"+repo.Dir, "--path", "stacks", "--interval", "0")
	c.must("node-1", "source", "sync", "infra")
	c.eventually(30*time.Second, func() error {
		if out := c.must("node-1", "service", "ls").Stdout; !strings.Contains(out, "3/3") {
			return fmt.Errorf("service ls:\n%s", out)
		}
		return nil
	})

	link := strings.TrimSpace(c.must("node-1", "ui", "token").Stdout)
	if want := "https://" + c.d("node-1").Addr + "/ui/login?token="; !strings.HasPrefix(link, want) {
		t.Fatalf("ui token printed %q, want %s...", link, want)
	}

	ctx := newBrowser(t, c.ctx, browser)
	shots := os.Getenv("BERTH_UI_SCREENSHOTS")
	base := "https://" + c.d("node-1").Addr
	visit := func(path, shot string, want ...string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(base+path)); err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
		text := mainText(t, ctx)
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Fatalf("%s lacks %q:\n%s", path, w, text)
			}
		}
		if shots != "" {
			screenshot(t, ctx, filepath.Join(shots, shot))
		}
	}

	// The link logs in once, moving on to the overview.
	if err := chromedp.Do(ctx, chromedp.Navigate(link)); err != nil {
		t.Fatal(err)
	}
	c.eventually(10*time.Second, func() error {
		text, err := pageText(ctx)
		if err == nil && !strings.Contains(text, "Overview") {
			err = fmt.Errorf("after the login link:\n%s", text)
		}
		return err
	})
	if code := statusOf(t, link); code != http.StatusUnauthorized {
		t.Errorf("the login link used again: %d, want 401", code)
	}
	if code := statusOf(t, base+"/ui/"); code != http.StatusUnauthorized {
		t.Errorf("the overview without a session: %d, want 401", code)
	}

	visit("/ui/", "dashboard-overview.png", "infra", "Degraded", rev[:12], "shop", "3/4")
	visit("/ui/sources/infra", "dashboard-source.png", "Degraded", "node.labels.gpu", rev, "applied")
	visit("/ui/stacks/shop", "dashboard-stack.png", "shop_web", "3/3", "shop_trainer", "0/1", "pending")
	visit("/ui/services/shop_trainer", "dashboard-pending.png", "0/1", "pending", "node.labels.gpu")
	visit("/ui/nodes", "dashboard-nodes.png", "node-1", "manager", "active")
	visit("/ui/nodes/node-1", "dashboard-node.png", "Tasks assigned to node-1", "shop_web.1")
	visit("/ui/services/shop_web", "dashboard-service.png", "3/3", "3 running of 3 desired", "shop_web.3", "node-1")

	// Live: the page follows the events and shows the new replica without a reload.
	c.eventually(10*time.Second, func() error {
		if s := evaluate[string](t, ctx, `document.getElementById("live").textContent`); s != "live" {
			return fmt.Errorf("live indicator %q", s)
		}
		return nil
	})
	evaluate[bool](t, ctx, `window.notReloaded = true`)
	c.must("node-1", "service", "scale", "shop_web=4")
	c.eventually(20*time.Second, func() error {
		text, err := pageText(ctx)
		if err == nil && !strings.Contains(text, "4/4") {
			err = fmt.Errorf("no 4/4 yet:\n%s", text)
		}
		return err
	})
	if !evaluate[bool](t, ctx, `window.notReloaded === true`) {
		t.Error("the page was reloaded to show the scale; want a live update")
	}

	// The scale is drift from Git: once a sync has seen it, the source's page shows
	// the plan that would undo it, as `berth diff --source` does.
	c.run("node-1", "source", "sync", "infra")
	c.eventually(20*time.Second, func() error {
		if out := c.must("node-1", "source", "ls").Stdout; !strings.Contains(out, "OutOfSync") {
			return fmt.Errorf("source ls after drift:\n%s", out)
		}
		return nil
	})
	visit("/ui/sources/infra", "dashboard-source-drift.png", "OutOfSync", "What a sync would do", "shop_web", "replicas")
}

// chromium finds the browser (Debian's chromium).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Unavailable(t, "no chromium: apt-get install chromium (scripts/install-test-deps.sh)")
	return ""
}

// newBrowser starts a headless browser that accepts the cluster's self-made
// certificates; it is gone when the test ends.
func newBrowser(t *testing.T, parent context.Context, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.IgnoreCertErrors,
		chromedp.NoSandbox, chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

func evaluate[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// mainText is the visible text of the page's main section.
func mainText(t *testing.T, ctx context.Context) string {
	t.Helper()
	text, err := pageText(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// pageText is the visible text of the page's main section, or the body's; an error
// while the browser moves from one page to the next.
func pageText(ctx context.Context) (string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("main") || document.body).innerText`))
}

func screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// statusOf is the status of a GET of u without credentials.
func statusOf(t *testing.T, u string) int {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
