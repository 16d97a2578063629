package executor

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/internal/ctrtest"
	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/internal/testimage"
	"github.com/berthd/berth/runtime/logdriver"
	"github.com/berthd/berth/spec"
	"github.com/containerd/containerd/v2/client"
)

// TestMain makes the test binary its own log driver: containerd's shim runs it with the
// driver's arguments (see WithLogDriver in newEnv).
func TestMain(m *testing.M) {
	if logdriver.Invoked(os.Args[1:]) {
		os.Exit(logdriver.Main())
	}
	os.Exit(m.Run())
}

const testImage = "berth.test/busybox:1"

var (
	imageOnce sync.Once
	imageTar  []byte
	imageErr  error
)

// busyboxArchive is the test image, built once per test binary.
func busyboxArchive(t *testing.T) []byte {
	t.Helper()
	imageOnce.Do(func() {
		var buf bytes.Buffer
		imageErr = testimage.Build(&buf, testimage.Options{Name: testImage})
		imageTar = buf.Bytes()
	})
	if imageErr != nil {
		testenv.Unavailable(t, imageErr.Error())
	}
	return imageTar
}

// env is one test's executor in a namespace and root of its own, with the busybox test
// image imported, and a raw containerd client to look behind the executor's back.
type env struct {
	t    *testing.T
	ex   *Executor
	raw  *client.Client
	ns   string
	root string
}

func newEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	addr := testenv.RequireContainerd(t)
	var b [4]byte
	rand.Read(b[:])
	ns := "berth-test-" + hex.EncodeToString(b[:])
	root := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ex, err := New(ctx, append([]Option{WithAddress(addr), WithNamespace(ns), WithRoot(root),
		WithLogDriver(exe), WithLogger(logger)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Ping(ctx); err != nil {
		testenv.Unavailable(t, err.Error())
	}
	raw, err := client.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ex: ex, raw: raw, ns: ns, root: root}
	t.Cleanup(e.cleanup)
	names, err := ex.ImportImage(ctx, bytes.NewReader(busyboxArchive(t)))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != testImage {
		t.Fatalf("imported %v, want [%s]", names, testImage)
	}
	return e
}

// cleanup removes everything the test made in containerd, then the namespace itself.
func (e *env) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ctrtest.RemoveNamespace(ctx, e.raw, e.ns); err != nil {
		e.t.Errorf("cleanup: %v", err)
	}
	e.ex.Close()
	e.raw.Close()
}

// run creates and starts a task of svc, returning its id.
func (e *env) run(id string, svc *spec.Service) string {
	e.t.Helper()
	ctx := context.Background()
	if err := e.ex.Create(ctx, Container{TaskID: id, TaskName: svc.Name + ".1", Stack: "st", Service: "st_" + svc.Name, SpecHash: "h1", Spec: svc}); err != nil {
		e.t.Fatalf("create %s: %v", id, err)
	}
	if err := e.ex.Start(ctx, id); err != nil {
		e.t.Fatalf("start %s: %v", id, err)
	}
	return id
}

func (e *env) exits() <-chan Exit {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	ch, err := e.ex.Exits(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return ch
}

// waitExit returns the next exit of id from ch, skipping others.
func waitExit(t *testing.T, ch <-chan Exit, id string) Exit {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ex, ok := <-ch:
			if !ok {
				t.Fatal("exit channel closed")
			}
			if ex.TaskID == id {
				return ex
			}
		case <-timeout:
			t.Fatalf("no exit of %s within 30s", id)
		}
	}
}

func (e *env) logs(id string) string {
	e.t.Helper()
	var buf bytes.Buffer
	if err := e.ex.Logs(context.Background(), id, LogOptions{}, &buf); err != nil {
		e.t.Fatalf("logs of %s: %v", id, err)
	}
	return buf.String()
}

// waitLogs waits until the task's logs contain want, and returns them.
func (e *env) waitLogs(id, want string) string {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		l := e.logs(id)
		if strings.Contains(l, want) {
			return l
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("logs of %s never contained %q; they are:\n%s", id, want, l)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func service(name string, cmd ...string) *spec.Service {
	grace := spec.Duration(2 * time.Second)
	return &spec.Service{Name: name, Image: testImage, Command: cmd, StopGracePeriod: &grace}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
