package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"regexp"
	"slices"
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
	t.Run("stack services and node ps", func(t *testing.T) { testStackServicesNodePs(t, c) })
	t.Run("completion of names from the daemon", func(t *testing.T) { testCompletion(t, c) })
	t.Run("swarm ca and join-token", func(t *testing.T) { testSwarmReads(t, c) })
	t.Run("version", func(t *testing.T) { testVersion(t, c) })
	// Last: it restarts the node.
	t.Run("swarm update --autolock and swarm unlock", func(t *testing.T) { testSwarmAutolock(t, c) })
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

func testSwarmReads(t *testing.T, c *procCluster) {
	ca := c.must("node-1", "swarm", "ca").Stdout
	block, _ := pem.Decode([]byte(ca))
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("swarm ca printed no certificate:\n%s", ca)
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		t.Errorf("swarm ca: %v", err)
	}
	alias := c.must("node-1", "join-token", "-q", "worker").Stdout
	if got := c.must("node-1", "swarm", "join-token", "-q", "worker").Stdout; got != alias || !strings.HasPrefix(got, "BERTH-1-") {
		t.Errorf("swarm join-token -q worker = %q, join-token -q worker = %q", got, alias)
	}
}

func testVersion(t *testing.T, c *procCluster) {
	out := c.must("node-1", "version").Stdout
	if !strings.Contains(out, "Client:\n Version:") || !strings.Contains(out, "Server:\n Version:") {
		t.Errorf("version:\n%s", out)
	}
	var v versions
	if err := json.Unmarshal([]byte(c.must("node-1", "version", "--format", "json").Stdout), &v); err != nil || v.Server == nil || v.Server.GoVersion == "" {
		t.Errorf("version --format json: %+v %v", v, err)
	}
}

// The course's `docker swarm update --autolock=true ; docker swarm unlock`.
func testSwarmAutolock(t *testing.T, c *procCluster) {
	out := c.must("node-1", "swarm", "update", "--autolock=true").Stdout
	key := regexp.MustCompile(`BERTHKEY-1-\S+`).FindString(out + c.must("node-1", "swarm", "unlock-key", "-q").Stdout)
	if key == "" {
		t.Fatalf("no unlock key after swarm update --autolock=true:\n%s", out)
	}
	if err := c.d("node-1").Stop(); err != nil {
		t.Fatal(err)
	}
	c.start("node-1")
	if info := c.info("node-1"); !info.Locked {
		t.Fatalf("restarted autolocked manager: %+v", info)
	}
	c.mustStdin("node-1", key+"\n", "swarm", "unlock")
	c.eventually(20*time.Second, func() error { return c.run("node-1", "node", "ls").Err() })
}

func testStackServicesNodePs(t *testing.T, c *procCluster) {
	const compose = "services:\n  app:\n    image: busybox:1.36\n    deploy:\n      replicas: 2\n"
	c.mustStdin("node-1", compose, "stack", "deploy", "-c", "-", "lst")
	t.Cleanup(func() { c.run("node-1", "stack", "rm", "lst") })
	var out string
	c.eventually(30*time.Second, func() error {
		out = c.must("node-1", "stack", "services", "lst").Stdout
		if !strings.Contains(out, "2/2") {
			return fmt.Errorf("stack services lst:\n%s", out)
		}
		return nil
	})
	if !regexp.MustCompile(`(?m)^ID\s+NAME\s+MODE\s+REPLICAS\s+IMAGE\s+PORTS$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^\S{12}\s+lst_app\s+replicated\s+2/2\s+busybox:1.36\s*$`).MatchString(out) {
		t.Errorf("stack services lst:\n%s", out)
	}
	if r := c.must("node-1", "stack", "services", "nope"); r.Stdout != "" || !strings.Contains(r.Stderr, "Nothing found in stack: nope") {
		t.Errorf("stack services of no stack: %v", r)
	}
	ps := c.must("node-1", "node", "ps").Stdout
	if !strings.Contains(ps, "DESIRED STATE") || !strings.Contains(ps, "lst_app.1") || !strings.Contains(ps, "lst_app.2") {
		t.Errorf("node ps:\n%s", ps)
	}
	// The tasks of the stack an earlier subtest removed may still be going away.
	c.eventually(30*time.Second, func() error {
		self := c.must("node-1", "node", "ps", "-q", "self").Stdout
		if byName := c.must("node-1", "node", "ps", "-q", "node-1").Stdout; self != byName || self == "" {
			return fmt.Errorf("node ps -q self:\n%s\nnode ps -q node-1:\n%s", self, byName)
		}
		return nil
	})
}

func testCompletion(t *testing.T, c *procCluster) {
	const compose = "services:\n  web:\n    image: busybox:1.36\n  worker:\n    image: busybox:1.36\n"
	c.mustStdin("node-1", compose, "stack", "deploy", "-c", "-", "cmp")
	t.Cleanup(func() { c.run("node-1", "stack", "rm", "cmp") })
	c.mustStdin("node-1", "x", "secret", "create", "cmp_token", "-")
	t.Cleanup(func() { c.run("node-1", "secret", "rm", "cmp_token") })
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"service", "inspect", ""}, []string{"cmp_web", "cmp_worker"}},
		{[]string{"service", "inspect", "cmp_web", "cmp_w"}, []string{"cmp_worker"}},
		{[]string{"service", "scale", "cmp_we"}, []string{"cmp_web="}},
		{[]string{"stack", "services", "c"}, []string{"cmp"}},
		{[]string{"node", "ps", ""}, []string{"node-1"}},
		{[]string{"secret", "rm", "cmp"}, []string{"cmp_token"}},
		{[]string{"stack", "ps", "cmp", ""}, nil},
	} {
		out := c.must("node-1", append([]string{"__complete"}, tc.args...)...).Stdout
		lines := strings.Split(strings.TrimSpace(out), "\n")
		got := lines[:len(lines)-1] // the last line is cobra's directive
		if !slices.Equal(got, tc.want) && !(len(got) == 0 && tc.want == nil) {
			t.Errorf("__complete %q = %q, want %q", tc.args, got, tc.want)
		}
	}
}
