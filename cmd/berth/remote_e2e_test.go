package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/internal/clustertest"
	"github.com/berthd/berth/internal/testenv"
)

// runEnv runs the CLI with env added to the test's environment.
func runEnv(ctx context.Context, bin string, env []string, args ...string) clustertest.Result {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := 0
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return clustertest.Result{Args: args, Code: -1, Stderr: err.Error()}
		}
		code = ee.ExitCode()
	}
	return clustertest.Result{Args: args, Code: code, Stdout: stdout.String(), Stderr: stderr.String()}
}

// sshd is an OpenSSH server of the test's own on a loopback port, which lets in the
// test's key only and whose sessions find berth on their PATH and node's socket in
// BERTH_HOST; sshEnv makes the system ssh use that key and trust that server alone.
type sshd struct {
	port   int
	sshEnv []string
}

func startSSHD(t *testing.T, berthDir, socketHost string) *sshd {
	t.Helper()
	const server = "/usr/sbin/sshd"
	if _, err := os.Stat(server); err != nil {
		testenv.Unavailable(t, "no OpenSSH server (apt-get install openssh-server; scripts/install-test-deps.sh does)")
	}
	testenv.RequireCommand(t, "ssh-keygen", "the ssh test makes its keys with it")
	client, err := exec.LookPath("ssh")
	if err != nil {
		testenv.Unavailable(t, "no OpenSSH client: "+err.Error())
	}
	dir := t.TempDir()
	for _, key := range []string{"host_key", "id"} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, key)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	ports, err := clustertest.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	s := &sshd{port: ports[0]}
	files := map[string]string{
		"authorized_keys": fmt.Sprintf(`environment="PATH=%s:/usr/bin:/bin",environment="BERTH_HOST=%s" %s`, berthDir, socketHost, read("id.pub")),
		"known_hosts":     fmt.Sprintf("[127.0.0.1]:%d %s", s.port, read("host_key.pub")),
		"sshd_config": strings.Join([]string{"Port " + strconv.Itoa(s.port), "ListenAddress 127.0.0.1",
			"HostKey " + filepath.Join(dir, "host_key"), "AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
			"PermitUserEnvironment yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
			"StrictModes no", "PermitRootLogin prohibit-password", "PidFile none"}, "\n"),
		"ssh_config": strings.Join([]string{"Host *", "  IdentityFile " + filepath.Join(dir, "id"), "  IdentitiesOnly yes",
			"  UserKnownHostsFile " + filepath.Join(dir, "known_hosts"), "  StrictHostKeyChecking yes", "  BatchMode yes"}, "\n"),
		// The system ssh, with the test's configuration instead of the user's.
		"bin/ssh": "#!/bin/sh\nexec " + client + " -F " + filepath.Join(dir, "ssh_config") + " \"$@\"\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content+"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// sshd refuses to start without its privilege separation folder.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(server, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("--- sshd log\n%s", log.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := clustertest.Eventually(ctx, 20*time.Second, func() error {
		conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.port))
		if err == nil {
			conn.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("sshd does not listen: %v\n%s", err, log.String())
	}
	s.sshEnv = []string{"PATH=" + filepath.Join(dir, "bin") + ":" + os.Getenv("PATH")}
	return s
}

// TestRemoteSSHProcesses runs the CLI with -H ssh:// and BERTH_HOST=ssh:// against
// a real sshd: it sees what the node's socket shows; a host ssh cannot reach and a
// berth that is not there are one sentence each, naming the host.
func TestRemoteSSHProcesses(t *testing.T) {
	c := newProcClusterArgs(t, testDaemonArgs, "node-1")
	c.start("node-1")
	c.initCluster("node-1", nil, nil)
	s := startSSHD(t, filepath.Dir(c.bin), c.d("node-1").Host())
	host := fmt.Sprintf("ssh://root@127.0.0.1:%d", s.port)

	for _, args := range [][]string{{"node", "ls"}, {"service", "ls"}} {
		local := c.must("node-1", args...).Stdout
		if r := runEnv(c.ctx, c.bin, s.sshEnv, append([]string{"-H", host}, args...)...); r.Code != 0 || r.Stdout != local {
			t.Fatalf("over ssh: %v\nwant the socket's answer:\n%s", r, local)
		}
	}
	if r := runEnv(c.ctx, c.bin, append(s.sshEnv, "BERTH_HOST="+host), "node", "ls"); r.Code != 0 || !strings.Contains(r.Stdout, "node-1") {
		t.Fatalf("BERTH_HOST=%s: %v", host, r)
	}

	unreachable := fmt.Sprintf("ssh://root@127.0.0.1:%d", s.port+1)
	if r := runEnv(c.ctx, c.bin, s.sshEnv, "-H", unreachable, "node", "ls"); r.Code != 2 ||
		!strings.HasPrefix(r.Stderr, "berth: cannot reach the berth daemon of "+unreachable+" over ssh: ") || !strings.Contains(r.Stderr, "refused") {
		t.Fatalf("unreachable host: %v", r)
	}
	if r := runEnv(c.ctx, c.bin, append(s.sshEnv, "BERTH_REMOTE_BINARY=/nonexistent/berth"), "-H", host, "node", "ls"); r.Code != 2 ||
		!strings.Contains(r.Stderr, "cannot reach the berth daemon of "+host+" over ssh: ") || !strings.Contains(r.Stderr, "/nonexistent/berth") {
		t.Fatalf("no berth at BERTH_REMOTE_BINARY: %v", r)
	}
}

// TestRemoteTLSProcesses reaches a manager's TCP port with a client certificate
// from `berth ca client-cert`: through BERTH_CERT_PATH, the --tls* flags and a
// context; without one the CLI says what to give.
func TestRemoteTLSProcesses(t *testing.T) {
	c := newProcClusterArgs(t, testDaemonArgs, "node-1")
	c.start("node-1")
	c.initCluster("node-1", nil, nil)
	certs := filepath.Join(t.TempDir(), "certs")
	c.must("node-1", "ca", "client-cert", "--out", certs, "--ttl", "1h")
	host := "tcp://" + c.d("node-1").Addr
	cfg := "BERTH_CONFIG=" + t.TempDir()

	local := c.must("node-1", "node", "ls").Stdout
	for _, run := range []struct {
		name string
		env  []string
		args []string
	}{
		{"BERTH_CERT_PATH", []string{"BERTH_CERT_PATH=" + certs}, []string{"-H", host, "node", "ls"}},
		{"--tls* flags", nil, []string{"-H", host, "--tlscacert", filepath.Join(certs, "ca.pem"),
			"--tlscert", filepath.Join(certs, "cert.pem"), "--tlskey", filepath.Join(certs, "key.pem"), "node", "ls"}},
	} {
		if r := runEnv(c.ctx, c.bin, run.env, run.args...); r.Code != 0 || r.Stdout != local {
			t.Fatalf("%s: %v\nwant the socket's answer:\n%s", run.name, r, local)
		}
	}
	if r := runEnv(c.ctx, c.bin, nil, "-H", host, "node", "ls"); r.Code != 2 || !strings.Contains(r.Stderr, "takes mutual TLS only") {
		t.Fatalf("tcp:// without a certificate: %v", r)
	}

	must := func(args ...string) string {
		t.Helper()
		r := runEnv(c.ctx, c.bin, []string{cfg}, args...)
		if r.Code != 0 {
			t.Fatal(r)
		}
		return r.Stdout
	}
	must("context", "create", "prod", "--host", host, "--cert-dir", certs, "--description", "the test cluster")
	must("context", "use", "prod")
	if out := must("context", "ls"); !strings.Contains(out, "prod *") {
		t.Fatalf("context ls after use prod:\n%s", out)
	}
	if out := must("node", "ls"); out != local {
		t.Fatalf("node ls through the current context:\n%s\nwant:\n%s", out, local)
	}
	if r := runEnv(c.ctx, c.bin, []string{cfg}, "context", "rm", "prod"); r.Code != 2 || !strings.Contains(r.Stderr, "context prod is in use") {
		t.Fatalf("removing the context in use: %v", r)
	}
	must("context", "use", "default")
	must("context", "rm", "prod")
	if out := must("context", "ls", "-q"); strings.TrimSpace(out) != "default" {
		t.Fatalf("context ls -q after rm:\n%s", out)
	}
}
