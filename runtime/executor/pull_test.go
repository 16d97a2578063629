package executor

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"golang.org/x/crypto/bcrypt"
)

// startRegistry runs Debian's docker-registry on a loopback port with one htpasswd user
// and returns its host:port.
func startRegistry(t *testing.T, user, password string) string {
	t.Helper()
	testenv.RequireCommand(t, "docker-registry", "pull tests run a registry on loopback (Debian package docker-registry)")
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	config := fmt.Sprintf(`version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: %s}}
http: {addr: %s}
auth: {htpasswd: {realm: berth-test, path: %s}}
`, filepath.Join(dir, "data"), addr, filepath.Join(dir, "htpasswd"))
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker-registry", "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
	// Should the test binary be killed, the registry goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry on %s not answering: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPullFromLocalRegistryWithAuth(t *testing.T) {
	registryConfig := filepath.Join(t.TempDir(), "config.json")
	e := newEnv(t, WithRegistryConfig(registryConfig))
	addr := startRegistry(t, "berth", "s3cret")
	ctx := context.Background()
	ref := addr + "/berth/busybox:1"

	// Push the imported test image with containerd's own client.
	rctx := namespaces.WithNamespace(ctx, e.ns)
	img, err := e.raw.GetImage(rctx, testImage)
	if err != nil {
		t.Fatal(err)
	}
	pushResolver := docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(
		docker.WithPlainHTTP(docker.MatchLocalhost),
		docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthCreds(func(string) (string, string, error) {
			return "berth", "s3cret", nil
		}))),
	)})
	if err := e.raw.Push(rctx, ref, img.Target(), client.WithResolver(pushResolver)); err != nil {
		t.Fatalf("push to the test registry: %v", err)
	}
	// Without the imported image the pull has to fetch every blob.
	if err := e.raw.ImageService().Delete(rctx, testImage, images.SynchronousDelete()); err != nil {
		t.Fatal(err)
	}

	if err := e.ex.EnsureImage(ctx, ref); err == nil {
		t.Fatal("pulled without credentials from a registry that wants them")
	}
	auth := base64.StdEncoding.EncodeToString([]byte("berth:s3cret"))
	if err := os.WriteFile(registryConfig, fmt.Appendf(nil, `{"auths":{"http://%s":{"auth":"%s"}}}`, addr, auth), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.ex.EnsureImage(ctx, ref); err != nil {
		t.Fatalf("pull with credentials: %v", err)
	}
	pulled, err := e.raw.GetImage(rctx, ref)
	if err != nil {
		t.Fatalf("pulled image not in the store: %v", err)
	}
	if ok, err := pulled.IsUnpacked(rctx, DefaultSnapshotter); err != nil || !ok {
		t.Fatalf("pulled image unpacked: %v, %v", ok, err)
	}
	// Present now: no registry needed any more.
	if err := e.ex.EnsureImage(ctx, ref); err != nil {
		t.Fatal(err)
	}

	exits := e.exits()
	svc := service("pulled", "true")
	svc.Image = ref
	id := e.run("t-pulled", svc)
	if ex := waitExit(t, exits, id); ex.Code != 0 {
		t.Fatalf("task of the pulled image exited %d", ex.Code)
	}

	if err := e.ex.EnsureImage(ctx, "Not A Reference"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad reference: %v, want ErrInvalid", err)
	}
}

func TestRegistryCredentials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	e := &Executor{registryConfig: path}
	if u, p, err := e.credentials("registry.example"); err != nil || u != "" || p != "" {
		t.Fatalf("missing config: %q %q %v", u, p, err)
	}
	auth := base64.StdEncoding.EncodeToString([]byte("bob:pa:ss"))
	cfg := fmt.Sprintf(`{"auths":{
		"https://index.docker.io/v1/": {"auth": %q},
		"registry.example:5000": {"username": "alice", "password": "pw"},
		"https://tokens.example/v2/": {"identitytoken": "tok"}}}`, auth)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string][2]string{
		"registry-1.docker.io":  {"bob", "pa:ss"},
		"registry.example:5000": {"alice", "pw"},
		"tokens.example":        {"", "tok"},
		"other.example":         {"", ""},
	} {
		u, p, err := e.credentials(host)
		if err != nil || u != want[0] || p != want[1] {
			t.Errorf("%s: %q %q %v, want %q", host, u, p, err, want)
		}
	}
}

func TestRegistryCredentialHelpers(t *testing.T) {
	bin := t.TempDir()
	helper := `#!/bin/sh
read -r server
case "$server" in
registry.example) echo '{"ServerURL":"registry.example","Username":"carol","Secret":"s3"}' ;;
https://index.docker.io/v1/) echo '{"ServerURL":"https://index.docker.io/v1/","Username":"<token>","Secret":"hubtok"}' ;;
*) echo "credentials not found in native keychain"; exit 1 ;;
esac
`
	for name, script := range map[string]string{
		"docker-credential-fake":   helper,
		"docker-credential-broken": "#!/bin/sh\necho 'the keychain is locked' >&2\nexit 1\n",
	} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	path := filepath.Join(t.TempDir(), "config.json")
	e := &Executor{registryConfig: path}
	cfg := `{"credsStore": "fake",
		"credHelpers": {"locked.example": "broken", "registry.example": "fake"},
		"auths": {"static.example": {"username": "dave", "password": "pw"}, "registry.example": {"username": "not", "password": "used"}}}`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string][2]string{
		"registry.example":     {"carol", "s3"}, // its helper, before the file
		"static.example":       {"dave", "pw"},  // the file, before the store
		"registry-1.docker.io": {"", "hubtok"},  // the store, asked under Hub's key; a token
		"other.example":        {"", ""},        // the store has nothing: anonymous
	} {
		u, p, err := e.credentials(host)
		if err != nil || u != want[0] || p != want[1] {
			t.Errorf("%s: %q %q %v, want %q", host, u, p, err, want)
		}
	}
	_, _, err := e.credentials("locked.example")
	if err == nil || !strings.Contains(err.Error(), "docker-credential-broken") || !strings.Contains(err.Error(), "the keychain is locked") {
		t.Errorf("a failing helper: %v, want its name and its message", err)
	}
}
