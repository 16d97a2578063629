package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// oneNode starts a one-node cluster of simulated agents, ready for commands.
func oneNode(t *testing.T) *procCluster {
	t.Helper()
	c := newProcCluster(t, "node-1")
	c.start("node-1")
	c.initCluster("node-1", nil, nil)
	c.eventually(20*time.Second, func() error {
		rows, err := parseNodeLs(c.must("node-1", "node", "ls").Stdout)
		if err != nil {
			return err
		}
		if rows["node-1"].status != "Ready" {
			return fmt.Errorf("node-1 is %q", rows["node-1"].status)
		}
		return nil
	})
	return c
}

// mustStdin is must with standard input.
func (c *procCluster) mustStdin(name, stdin string, args ...string) string {
	c.t.Helper()
	r := c.d(name).CLI(c.ctx, stdin, args...)
	if r.Code != 0 {
		c.t.Fatalf("on %s: %v", name, r)
	}
	return r.Stdout
}

// TestGroupsProcesses covers issue 19's command groups and small verbs on one
// one-node cluster, one subtest per behaviour.
func TestGroupsProcesses(t *testing.T) {
	c := oneNode(t)
	t.Run("secret create ls inspect rm", func(t *testing.T) { testSecretVerbs(t, c) })
	t.Run("config create inspect --pretty rm", func(t *testing.T) { testConfigVerbs(t, c) })
	t.Run("secret rm refuses a secret in use", func(t *testing.T) { testSecretInUse(t, c) })
}

func testSecretVerbs(t *testing.T, c *procCluster) {
	const value = "s3cr3t-value-never-printed"
	id := strings.TrimSpace(c.mustStdin("node-1", value, "secret", "create", "--label", "env=prod", "db_pw", "-"))
	if len(id) < 12 {
		t.Fatalf("secret create printed %q, want an ID", id)
	}
	ls := c.must("node-1", "secret", "ls").Stdout
	if !strings.Contains(ls, "ID") || !strings.Contains(ls, "db_pw") || !strings.Contains(ls, id[:12]) {
		t.Errorf("secret ls:\n%s", ls)
	}
	if q := strings.TrimSpace(c.must("node-1", "secret", "ls", "-q").Stdout); q != id[:12] {
		t.Errorf("secret ls -q = %q, want %q", q, id[:12])
	}
	for _, ref := range []string{"db_pw", id, id[:6]} {
		var got []objectRow
		out := c.must("node-1", "secret", "inspect", ref).Stdout
		if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 || got[0].Name != "db_pw" || got[0].Labels["env"] != "prod" {
			t.Errorf("secret inspect %s: %v\n%s", ref, err, out)
		}
		if strings.Contains(out, value) || strings.Contains(out, "data") {
			t.Errorf("secret inspect %s shows the value:\n%s", ref, out)
		}
	}
	if out := c.must("node-1", "secret", "inspect", "--pretty", "db_pw").Stdout; !strings.Contains(out, "Name:\t\tdb_pw") || strings.Contains(out, value) {
		t.Errorf("secret inspect --pretty:\n%s", out)
	}
	if out := c.must("node-1", "secret", "rm", "db_pw").Stdout; strings.TrimSpace(out) != "db_pw" {
		t.Errorf("secret rm printed %q", out)
	}
	c.fails("node-1", "", "no such secret: db_pw (berth secret ls lists them)", "secret", "inspect", "db_pw")
}

func testConfigVerbs(t *testing.T, c *procCluster) {
	c.mustStdin("node-1", "listen 80;\n", "config", "create", "site_conf", "-")
	out := c.must("node-1", "config", "inspect", "--pretty", "site_conf").Stdout
	if !strings.Contains(out, "Data:\nlisten 80;") {
		t.Errorf("config inspect --pretty:\n%s", out)
	}
	c.must("node-1", "config", "rm", "site_conf")
	if ls := c.must("node-1", "config", "ls").Stdout; strings.Contains(ls, "site_conf") {
		t.Errorf("config ls after rm:\n%s", ls)
	}
}

func testSecretInUse(t *testing.T, c *procCluster) {
	c.must("node-1", "stack", "deploy", "-c", "../../examples/secrets/compose.yaml", "sec")
	t.Cleanup(func() { c.run("node-1", "stack", "rm", "sec") })
	c.fails("node-1", "", "secret sec_api_token is in use by service sec_app", "secret", "rm", "sec_api_token")
	c.fails("node-1", "", "config sec_nginx_conf is in use by service sec_app", "config", "rm", "sec_nginx_conf")
}
