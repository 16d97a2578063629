package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/internal/testimage"
)

// The course berth grew from teaches Swarm with these lines, which must work with
// `berth` for `docker`. The images are the course's names: the simulated agents of
// TestCourseProcesses pull nothing, and TestCourseDataPlaneProcess loads the local
// test image under the name postgres:latest (there is no registry to pull from).

// TestCourseProcesses runs the course's lines on a one-node cluster of simulated
// agents: a constrained service pends until the node has the label, a global
// service runs one task per node, a per-node cap shows in `service ls`; then the
// update, rollback, scale and rm verbs, and autolock with unlock.
func TestCourseProcesses(t *testing.T) {
	c := newProcCluster(t, "node-1")
	c.start("node-1")
	c.initCluster("node-1", nil, nil)
	c.eventually(20*time.Second, func() error {
		rows, err := parseNodeLs(c.must("node-1", "node", "ls").Stdout)
		if err == nil && rows["node-1"].status != "Ready" {
			err = fmt.Errorf("node-1 is %q", rows["node-1"].status)
		}
		return err
	})

	// docker service create --constraint 'node.labels.os == linux' --name mydb postgres:latest
	// (detached: it cannot converge before the label exists).
	r := c.must("node-1", "service", "create", "-d", "--constraint", "node.labels.os == linux", "--name", "mydb", "postgres:latest")
	if id := strings.TrimSpace(r.Stdout); !regexp.MustCompile(`^[0-9a-z]{25}$`).MatchString(id) {
		t.Errorf("service create printed %q, want the service's ID", r.Stdout)
	}
	c.eventually(20*time.Second, func() error {
		ps := c.must("node-1", "service", "ps", "mydb").Stdout
		if !strings.Contains(ps, "mydb.1") || !strings.Contains(ps, "Pending") || !strings.Contains(ps, "no suitable node") {
			return fmt.Errorf("service ps mydb before the label:\n%s", ps)
		}
		return nil
	})
	// docker node update --label-add os=linux node1
	c.must("node-1", "node", "update", "--label-add", "os=linux", "node-1")
	c.eventually(20*time.Second, func() error { return serviceRuns(c, "mydb", "1/1") })
	c.fails("node-1", "", "a service named mydb already exists", "service", "create", "--name", "mydb", "nginx:latest")

	// docker service create --name mydb --mount type=volume,source=mydbdata,target=/var/lib/postgresql/data postgres:latest
	// (mydb2 here: mydb exists already). It waits by default.
	r = c.must("node-1", "service", "create", "--name", "mydb2", "--mount", "type=volume,source=mydbdata,target=/var/lib/postgresql/data", "postgres:latest")
	if !strings.Contains(r.Stdout, "overall progress: 1 out of 1 tasks") || !strings.Contains(r.Stdout, "verify: Service converged") {
		t.Errorf("service create without -d:\n%s", r.Stdout)
	}
	mydb2 := inspectService(t, c, "mydb2")
	if m := mydb2.Spec.Mounts; len(m) != 1 || m[0].Type != "volume" || m[0].Source != "mydbdata" || m[0].Target != "/var/lib/postgresql/data" {
		t.Errorf("mydb2's mounts: %+v", m)
	}

	// docker service create --mode global --name prometheus prom/prometheus:latest
	r = c.must("node-1", "service", "create", "--mode", "global", "--name", "prometheus", "prom/prometheus:latest")
	if !strings.Contains(r.Stdout, "verify: Service converged") {
		t.Errorf("global service create:\n%s", r.Stdout)
	}
	c.eventually(20*time.Second, func() error { return serviceRuns(c, "prometheus", "1/1") })

	// docker service create --replicas-max-per-node 1 --name nginx nginx:latest
	c.must("node-1", "service", "create", "--replicas-max-per-node", "1", "--name", "nginx", "nginx:latest")
	c.eventually(20*time.Second, func() error { return serviceRuns(c, "nginx", "1/1 (max 1 per node)") })

	// The services belong to no stack.
	if ls := c.must("node-1", "stack", "ls").Stdout; strings.Count(strings.TrimSpace(ls), "\n") != 0 {
		t.Errorf("stack ls shows services of no stack:\n%s", ls)
	}

	testCourseUpdate(t, c)

	// rm: the services are gone, their tasks with them.
	c.must("node-1", "service", "rm", "mydb2", "prometheus")
	c.fails("node-1", "", "mydb2", "service", "inspect", "mydb2")
	c.fails("node-1", "", "nope", "service", "rm", "nope")
	if ls := c.must("node-1", "service", "ls").Stdout; strings.Contains(ls, "prometheus") || !strings.Contains(ls, "nginx") {
		t.Errorf("service ls after rm:\n%s", ls)
	}

	testCourseAutolock(t, c)
}

// testCourseUpdate: update flags change the spec and wait; rollback returns to the
// spec before; scale waits; a refused change says why.
func testCourseUpdate(t *testing.T, c *procCluster) {
	t.Helper()
	r := c.must("node-1", "service", "update", "--image", "postgres:17", "--env-add", "PGDATA=/data", "--constraint-rm", "node.labels.os==linux",
		"--publish-add", "5432:5432", "--limit-memory", "256M", "--update-parallelism", "2", "mydb")
	if !strings.Contains(r.Stdout, "verify: Service converged") {
		t.Errorf("service update:\n%s", r.Stdout)
	}
	s := inspectService(t, c, "mydb")
	if s.Spec.Image != "postgres:17" || s.Spec.Environment["PGDATA"] != "/data" || len(s.Spec.Deploy.Placement.Constraints) != 0 ||
		len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Published != 5432 || s.Spec.Deploy.Resources.Limits.MemoryBytes != 256<<20 ||
		*s.Spec.Deploy.UpdateConfig.Parallelism != 2 {
		t.Errorf("after service update: %+v", s.Spec)
	}
	if s.PreviousSpec == nil || s.PreviousSpec.Image != "postgres:latest" {
		t.Errorf("previous spec: %+v", s.PreviousSpec)
	}
	c.fails("node-1", "", "--replicas applies to replicated services only", "service", "update", "--replicas", "2", "prometheus")
	c.fails("node-1", "", `restart condition "never" is not valid`, "service", "update", "--restart-condition", "never", "mydb")
	c.fails("node-1", "", "nothing to update", "service", "update", "mydb")

	r = c.must("node-1", "service", "rollback", "mydb")
	if !strings.Contains(r.Stdout, "verify: Service converged") {
		t.Errorf("service rollback:\n%s", r.Stdout)
	}
	if s := inspectService(t, c, "mydb"); s.Spec.Image != "postgres:latest" || len(s.Spec.Ports) != 0 {
		t.Errorf("after rollback: %+v", s.Spec)
	}
	r = c.must("node-1", "service", "scale", "mydb=2")
	if !strings.Contains(r.Stdout, "overall progress: 2 out of 2 tasks") {
		t.Errorf("service scale:\n%s", r.Stdout)
	}
}

// testCourseAutolock: docker swarm update --autolock=true ; docker swarm unlock.
func testCourseAutolock(t *testing.T, c *procCluster) {
	t.Helper()
	r := c.must("node-1", "swarm", "update", "--autolock=true")
	key := regexp.MustCompile(`BERTHKEY-1-\S+`).FindString(r.Stdout)
	if key == "" {
		t.Fatalf("update --autolock=true printed no unlock key:\n%s", r.Stdout)
	}
	if err := c.d("node-1").Stop(); err != nil {
		t.Fatal(err)
	}
	c.start("node-1")
	if info := c.info("node-1"); !info.Locked {
		t.Fatalf("restarted with autolock on, the node is not locked: %+v", info)
	}
	if r := c.d("node-1").CLI(c.ctx, key+"\n", "swarm", "unlock"); r.Code != 0 {
		t.Fatalf("unlock: %v", r)
	}
	c.eventually(20*time.Second, func() error { return serviceRuns(c, "nginx", "1/1") })
}

// serviceRuns checks the REPLICAS column of a service in `service ls`.
func serviceRuns(c *procCluster, name, replicas string) error {
	return serviceRunsOn(c, "node-1", name, replicas)
}

// serviceRunsOn is serviceRuns as the manager node tells it.
func serviceRunsOn(c *procCluster, node, name, replicas string) error {
	ls := c.run(node, "service", "ls")
	for line := range strings.SplitSeq(ls.Stdout, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == name {
			if strings.Contains(line, " "+replicas+" ") {
				return nil
			}
		}
	}
	return fmt.Errorf("service ls has no %s with %s:\n%s%s", name, replicas, ls.Stdout, ls.Stderr)
}

func inspectService(t *testing.T, c *procCluster, name string) *api.ServiceStatus {
	t.Helper()
	var out []*api.ServiceStatus
	if err := json.Unmarshal([]byte(c.must("node-1", "service", "inspect", name).Stdout), &out); err != nil || len(out) != 1 {
		t.Fatalf("service inspect %s: %v", name, err)
	}
	return out[0]
}

// TestCourseDataPlaneProcess runs the course's volume line on a real node: the task
// writes into its named volume, which is the node's volume mydbdata, and the task
// that replaces it finds what it wrote. Then an update whose health check fails is
// rolled back, and `service update` says so with exit code 2.
func TestCourseDataPlaneProcess(t *testing.T) {
	testenv.RequireCommand(t, "nsenter", "the test looks into the tasks' namespaces")
	c, ctr := newDataPlaneNode(t)
	img := filepath.Join(t.TempDir(), "postgres.tar")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	err = testimage.Build(f, testimage.Options{Name: "postgres:latest", Cmd: []string{"sleep", "100000"}})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	c.must("node-1", "image", "load", img)

	r := c.must("node-1", "service", "create", "--name", "mydb", "--stop-grace-period", "1s",
		"--mount", "type=volume,source=mydbdata,target=/var/lib/postgresql/data", "postgres:latest")
	if !strings.Contains(r.Stdout, "verify: Service converged") {
		t.Fatalf("service create:\n%s", r.Stdout)
	}
	first := onlyTask(t, ctr, c.ctx, "mydb")
	writeInTask(t, first.Pid, "/var/lib/postgresql/data/marker", "course")
	if b, err := os.ReadFile(filepath.Join(c.d("node-1").DataDir, "volumes", "mydbdata", "_data", "marker")); err != nil || string(b) != "course" {
		t.Errorf("the node's volume mydbdata holds %q, %v; want what the task wrote", b, err)
	}
	c.must("node-1", "service", "update", "--force", "mydb")
	second := onlyTask(t, ctr, c.ctx, "mydb")
	if second.ID == first.ID {
		t.Fatal("update --force left the task in place")
	}
	if got := readInTask(t, second.Pid, "/var/lib/postgresql/data/marker"); got != "course" {
		t.Errorf("the replacement task reads %q from the volume, want course", got)
	}

	// An update that fails its health check rolls back: exit 2, the spec before.
	r = c.run("node-1", "service", "update", "--health-cmd", "false", "--health-interval", "1s", "--health-retries", "1",
		"--update-failure-action", "rollback", "--update-monitor", "5s", "mydb")
	if r.Code != 2 || !strings.Contains(r.Stderr, "service mydb did not converge: rollback") {
		t.Fatalf("service update with a failing health check: %v", r)
	}
	if s := inspectService(t, c, "mydb"); s.Spec.Healthcheck != nil {
		t.Errorf("after the rollback the spec has a health check: %+v", s.Spec.Healthcheck)
	}
	c.eventually(60*time.Second, func() error {
		tasks, err := ctr.Tasks(c.ctx, map[string]string{"io.berth.service": "mydb"})
		if err != nil || len(tasks) != 1 || tasks[0].Status != "running" {
			return fmt.Errorf("tasks of mydb after the rollback: %+v, %v", tasks, err)
		}
		return nil
	})
	c.must("node-1", "service", "rm", "mydb")
	c.eventually(30*time.Second, func() error {
		tasks, err := ctr.Tasks(c.ctx, map[string]string{"io.berth.service": "mydb"})
		if err != nil || len(tasks) != 0 {
			return fmt.Errorf("tasks of mydb after rm: %+v, %v", tasks, err)
		}
		return nil
	})
	// The agent counted what it did: three tasks started (create, --force, rollback),
	// each with its image and its network timed.
	agentMetricsAtLeast(t, c, "node-1", map[string]float64{`berth_agent_tasks_total{phase="running"}`: 3,
		"berth_agent_task_start_seconds_count": 3, `berth_agent_image_seconds_count{result="ok"}`: 3,
		`berth_agent_network_setup_seconds_count{result="ok"}`: 3})
}
