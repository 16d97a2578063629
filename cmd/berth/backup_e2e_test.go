package main

import (
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
	c.start("node-1")
	c.initCluster("node-1", nil, nil)
	dir := t.TempDir()
	compose := twoReplicaStack(t, dir)
	c.must("node-1", "stack", "deploy", "-c", compose, "web")
	c.must("node-1", "secret", "create", "db_pw", compose)
	c.eventually(20*time.Second, func() error { return serviceRuns(c, "web_app", "2/2") })

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
