package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A manager's online backup, restored into a wiped data dir, brings the cluster back:
// `swarm restore`, the daemon, `swarm unlock` (autolock was on), `swarm init
// --force-new-cluster`, and every service and secret of the backup is there and takes
// writes.
func TestBackupRestoreProcesses(t *testing.T) {
	c := newProcCluster(t, "node-1")
	dir := deployToBackUp(t, c)

	key := regexp.MustCompile(`BERTHKEY-1-\S+`).FindString(c.must("node-1", "swarm", "update", "--autolock=true").Stdout)
	if key == "" {
		t.Fatal("swarm update --autolock=true printed no unlock key")
	}
	backup := filepath.Join(dir, "backup.tgz")
	c.must("node-1", "swarm", "backup", backup)
	if st, err := os.Stat(backup); err != nil || st.Mode().Perm() != 0o600 || st.Size() == 0 {
		t.Fatalf("backup file: %v, %v; want a non-empty file of mode 0600", st, err)
	}
	c.fails("node-1", "", "give a file that does not exist yet", "swarm", "backup", backup)

	// The machine loses its disk.
	d := c.d("node-1")
	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	c.fails("node-1", "", "restore into an empty folder", "swarm", "restore", "--data-dir", d.DataDir, backup)
	if err := os.RemoveAll(d.DataDir); err != nil {
		t.Fatal(err)
	}
	if r := c.must("node-1", "swarm", "restore", "--data-dir", d.DataDir, backup); !strings.Contains(r.Stdout, "Backup restored") {
		t.Fatalf("restore: %v", r)
	}
	c.start("node-1")
	// The backup was taken with autolock on: the restored manager starts locked, and
	// its unlock key is the one the cluster had.
	if info := c.info("node-1"); !info.Locked {
		t.Fatalf("the restored manager is not locked: %+v", info)
	}
	c.fails("node-1", "", "locked", "swarm", "init", "--force-new-cluster")
	if r := c.d("node-1").CLI(c.ctx, key+"\n", "swarm", "unlock"); r.Code != 0 {
		t.Fatalf("unlock: %v", r)
	}
	c.must("node-1", "swarm", "init", "--force-new-cluster")
	if out := c.must("node-1", "secret", "ls").Stdout; !strings.Contains(out, "db_pw") {
		t.Errorf("secret ls after the restore:\n%s", out)
	}
	c.must("node-1", "service", "scale", "web_app=3")
	c.eventually(20*time.Second, func() error { return serviceRuns(c, "web_app", "3/3") })
}

// A backup restored on a replacement machine with another address: node-1 (on
// 127.0.0.1) is lost, its backup is restored on node-2 (on 127.0.0.2), and `swarm
// init --force-new-cluster` makes raft, the node row and the manager's certificate
// name the new address; the stack and the secret are there, a scale works and a fresh
// manager joins at the new address with the printed token.
func TestBackupRestoreElsewhereProcesses(t *testing.T) {
	c := newProcCluster(t, "node-1", "node-2", "node-3")
	moved := c.d("node-2")
	_, port, err := net.SplitHostPort(moved.Addr)
	if err != nil {
		t.Fatal(err)
	}
	moved.Addr = net.JoinHostPort("127.0.0.2", port)
	dir := deployToBackUp(t, c)
	backup := filepath.Join(dir, "backup.tgz")
	c.must("node-1", "swarm", "backup", backup)
	if err := c.d("node-1").Kill(); err != nil {
		t.Fatal(err)
	}

	c.must("node-2", "swarm", "restore", "--data-dir", moved.DataDir, backup)
	c.start("node-2")
	r := c.must("node-2", "swarm", "init", "--force-new-cluster")
	m := joinCommand.FindAllStringSubmatch(r.Stdout, -1)
	if len(m) != 2 || m[1][2] != moved.Addr {
		t.Fatalf("force-new-cluster on the new machine printed join commands %v, want them at %s:\n%s", m, moved.Addr, r.Stdout)
	}
	if info := c.info("node-2"); info.Leader == nil || info.Leader.Addr != moved.Addr || info.NodeAddr != moved.Addr {
		t.Fatalf("after the recovery raft's leader is %+v and the node's address %s, want %s", info.Leader, info.NodeAddr, moved.Addr)
	}
	if out := c.must("node-2", "node", "inspect", "node-2").Stdout; !strings.Contains(out, `"addr": "`+moved.Addr+`"`) {
		t.Errorf("the node row does not name the new address %s:\n%s", moved.Addr, out)
	}
	pemBytes, err := os.ReadFile(filepath.Join(moved.DataDir, "certs", "node.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatal("the manager's certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || cert.VerifyHostname("127.0.0.2") != nil {
		t.Fatalf("the manager's certificate does not name 127.0.0.2 (%v): %v", err, cert.IPAddresses)
	}

	if out := c.must("node-2", "secret", "ls").Stdout; !strings.Contains(out, "db_pw") {
		t.Errorf("secret ls after the restore:\n%s", out)
	}
	c.must("node-2", "service", "scale", "web_app=3")
	c.eventually(20*time.Second, func() error { return serviceRunsOn(c, "node-2", "web_app", "3/3") })
	c.start("node-3")
	if r := c.must("node-3", "join", "--token", m[1][1], m[1][2]); !strings.Contains(r.Stdout, "as a manager") {
		t.Fatalf("join of node-3: %v", r)
	}
	c.eventually(30*time.Second, func() error {
		if info := c.info("node-3"); info.Managers != 2 {
			return fmt.Errorf("node-3 counts %d managers, want 2", info.Managers)
		}
		return nil
	})
	c.must("node-3", "service", "scale", "web_app=1")
	c.eventually(20*time.Second, func() error { return serviceRunsOn(c, "node-3", "web_app", "1/1") })
}

// deployToBackUp starts a one-manager cluster on node-1 with the stack web (web_app,
// 2 replicas, running) and the secret db_pw, and returns a folder for the backup.
func deployToBackUp(t *testing.T, c *procCluster) string {
	t.Helper()
	c.start("node-1")
	c.initCluster("node-1", nil, nil)
	dir := t.TempDir()
	compose := twoReplicaStack(t, dir)
	c.must("node-1", "stack", "deploy", "-c", compose, "web")
	c.must("node-1", "secret", "create", "db_pw", compose)
	c.eventually(20*time.Second, func() error { return serviceRuns(c, "web_app", "2/2") })
	return dir
}
