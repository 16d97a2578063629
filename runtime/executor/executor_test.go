package executor

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/spec"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

// TestRunLogsExecAndReadopt runs a long-lived task and looks at it through the executor,
// through containerd's own client, and through a second executor made as a restarted
// agent would make it.
func TestRunLogsExecAndReadopt(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.run("t-run", service("web", "sh", "-c", "echo hi; echo oops >&2; sleep 1000"))

	// Creating the same task again changes nothing.
	if err := e.ex.Create(ctx, Container{TaskID: id, Spec: service("web", "true")}); err != nil {
		t.Fatalf("second create: %v", err)
	}
	if err := e.ex.Start(ctx, id); err != nil {
		t.Fatalf("start of a running task: %v", err)
	}

	rctx := namespaces.WithNamespace(ctx, e.ns)
	c, err := e.raw.LoadContainer(rctx, id)
	if err != nil {
		t.Fatalf("containerd does not know the container: %v", err)
	}
	labels, err := c.Labels(rctx)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{LabelTask: id, LabelTaskName: "web.1", LabelStack: "st", LabelService: "st_web", LabelSpecHash: "h1"} {
		if labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, labels[k], want)
		}
	}
	task, err := c.Task(rctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := task.Status(rctx); err != nil || st.Status != client.Running {
		t.Fatalf("containerd says the task is %v (%v)", st.Status, err)
	}

	out := e.waitLogs(id, "hi")
	if !strings.Contains(e.waitLogs(id, "oops"), "oops") {
		t.Fatalf("stderr missing from the logs: %q", out)
	}
	var stderrOnly strings.Builder
	if err := e.ex.Logs(ctx, id, LogOptions{Stderr: true}, &stderrOnly); err != nil || stderrOnly.String() != "oops\n" {
		t.Fatalf("stderr only: %q, %v", stderrOnly.String(), err)
	}

	code, output, err := e.ex.Exec(ctx, id, []string{"sh", "-c", "echo from-exec; exit 3"})
	if err != nil || code != 3 || string(output) != "from-exec\n" {
		t.Fatalf("exec: code %d, output %q, err %v", code, output, err)
	}
	if code, _, err := e.ex.Exec(ctx, id, []string{"/no/such/binary"}); err == nil && code == 0 {
		t.Fatal("exec of a missing binary succeeded")
	}

	// A new executor (a restarted agent) finds the task running, with its labels.
	ex2, err := New(ctx, WithAddress(testenv.RequireContainerd(t)), WithNamespace(e.ns), WithRoot(e.root), WithLogDriver(e.ex.logDriver))
	if err != nil {
		t.Fatal(err)
	}
	defer ex2.Close()
	list, err := ex2.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].TaskID != id || list[0].State != StateRunning || list[0].Pid == 0 ||
		list[0].Service != "st_web" || list[0].SpecHash != "h1" || list[0].Image != testImage {
		t.Fatalf("re-adoption list: %+v", list)
	}

	exits := e.exits()
	if err := ex2.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	// sh as pid 1 ignores SIGTERM (no handler), so the stop ends in SIGKILL.
	if ex := waitExit(t, exits, id); ex.Code != 137 {
		t.Fatalf("exit code after stop: %d, want 137", ex.Code)
	}
	info, err := ex2.Inspect(ctx, id)
	if err != nil || info.State != StateStopped || info.ExitCode != 137 || info.ExitedAt.IsZero() {
		t.Fatalf("after stop: %+v, %v", info, err)
	}
	if err := ex2.Stop(ctx, id); err != nil {
		t.Fatalf("stop of a stopped task: %v", err)
	}
	// containerd loses the task (a reboot does): the container reads as stopped, its
	// exit unknown; one whose task never started reads as created.
	if _, err := task.Delete(rctx); err != nil {
		t.Fatal(err)
	}
	if info, err := ex2.Inspect(ctx, id); err != nil || info.State != StateStopped || info.ExitCode != -1 {
		t.Fatalf("after containerd lost the task: %+v, %v", info, err)
	}
	if err := e.ex.Create(ctx, Container{TaskID: "t-never", Spec: service("web", "true")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.ex.Remove(ctx, "t-never") })
	if info, err := ex2.Inspect(ctx, "t-never"); err != nil || info.State != StateCreated {
		t.Fatalf("a container never started: %+v, %v", info, err)
	}

	if err := e.ex.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.ex.Remove(ctx, id); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	if _, err := e.raw.LoadContainer(rctx, id); err == nil {
		t.Fatal("the container is still in containerd after Remove")
	}
	if _, err := e.ex.Inspect(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("inspect after remove: %v, want ErrNotFound", err)
	}
	// Logs outlive the container until RemoveLogs.
	if !strings.Contains(e.logs(id), "hi") {
		t.Fatal("logs gone with the container")
	}
	if err := e.ex.RemoveLogs(id); err != nil {
		t.Fatal(err)
	}
	if err := e.ex.Logs(ctx, id, LogOptions{}, &strings.Builder{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("logs after RemoveLogs: %v, want ErrNotFound", err)
	}
}

// TestSpecIsHonoured has the container print what it sees.
func TestSpecIsHonoured(t *testing.T) {
	e := newEnv(t)
	bindDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(bindDir, "f"), []byte("from-host"), 0o644); err != nil {
		t.Fatal(err)
	}
	svc := service("probe")
	svc.Entrypoint = []string{"sh", "-c"}
	svc.Command = []string{strings.Join([]string{
		`echo "uid=$(id -u) gid=$(id -g)"`,
		`echo "pwd=$(pwd)"`,
		`echo "hostname=$(hostname)"`,
		`echo "FOO=$FOO PATH=$PATH"`,
		`touch /rootfs-write 2>/dev/null && echo rootfs=rw || echo rootfs=ro`,
		`touch /scratch/x && echo tmpfs=rw`,
		`echo "bind=$(cat /host/f)"`,
		`touch /host/g 2>/dev/null && echo bind=rw || echo bind=ro`,
		`echo "nofile=$(ulimit -n)"`,
		`echo "ipfwd=$(cat /proc/sys/net/ipv4/ip_forward)"`,
		`grep CapEff /proc/self/status`,
	}, "; ")}
	svc.Environment = map[string]string{"FOO": "bar"}
	svc.User = "app"
	svc.WorkingDir = "/home/app"
	svc.Hostname = "probe-host"
	svc.ReadOnly = true
	svc.Tmpfs = []string{"/scratch:size=1m"}
	svc.Mounts = []spec.Mount{{Type: spec.MountBind, Source: bindDir, Target: "/host", ReadOnly: true}}
	svc.Ulimits = map[string]spec.Ulimit{"nofile": {Soft: 512, Hard: 512}}
	svc.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
	svc.CapDrop = []string{"ALL"}
	svc.Labels = map[string]string{"com.example.team": "web"}

	exits := e.exits()
	id := e.run("t-probe", svc)
	if ex := waitExit(t, exits, id); ex.Code != 0 {
		t.Fatalf("probe exited %d; logs:\n%s", ex.Code, e.logs(id))
	}
	logs := e.waitLogs(id, "CapEff")
	for _, want := range []string{
		"uid=1000 gid=1000", "pwd=/home/app", "hostname=probe-host",
		"FOO=bar PATH=/usr/local/sbin:", "rootfs=ro", "tmpfs=rw", "bind=from-host", "bind=ro",
		"nofile=512", "ipfwd=1", "CapEff:\t0000000000000000",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	info, err := e.ex.Inspect(context.Background(), id)
	if err != nil || info.Labels["com.example.team"] != "web" || info.State != StateStopped || info.ExitCode != 0 {
		t.Fatalf("inspect: %+v, %v", info, err)
	}
}

func TestStopSignalAndGrace(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	exits := e.exits()

	// A task that ignores its stop signal is killed when the grace period is over.
	stubborn := service("stubborn", "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done")
	grace := spec.Duration(500 * time.Millisecond)
	stubborn.StopGracePeriod = &grace
	id := e.run("t-stubborn", stubborn)
	e.waitLogs(id, "ready")
	if err := e.ex.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ex := waitExit(t, exits, id); ex.Code != 137 {
		t.Fatalf("stubborn task exited %d, want 137 (SIGKILL)", ex.Code)
	}

	// A task gets its own stop signal and may exit as it likes.
	polite := service("polite", "sh", "-c", "trap 'echo got-usr1; exit 7' USR1; echo ready; while :; do sleep 0.1; done")
	polite.StopSignal = "SIGUSR1"
	long := spec.Duration(time.Minute)
	polite.StopGracePeriod = &long
	id = e.run("t-polite", polite)
	e.waitLogs(id, "ready")
	if err := e.ex.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ex := waitExit(t, exits, id); ex.Code != 7 {
		t.Fatalf("polite task exited %d, want 7", ex.Code)
	}
	e.waitLogs(id, "got-usr1")

	if err := e.ex.Stop(ctx, "no-such-task"); err != nil {
		t.Fatalf("stop of a missing task: %v", err)
	}
}

// TestExitsReportsInitOnly checks that exits of exec'd processes do not show as task exits.
func TestExitsReportsInitOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	exits := e.exits()
	runner := e.run("t-long", service("long", "sleep", "1000"))
	if code, _, err := e.ex.Exec(ctx, runner, []string{"true"}); err != nil || code != 0 {
		t.Fatalf("exec: %d, %v", code, err)
	}
	quitter := e.run("t-quit", service("quit", "sh", "-c", "exit 3"))
	select {
	case ex := <-exits:
		if ex.TaskID != quitter || ex.Code != 3 || ex.At.IsZero() {
			t.Fatalf("first exit: %+v, want %s with code 3", ex, quitter)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit event within 30s")
	}
	info, err := e.ex.Inspect(ctx, runner)
	if err != nil || info.State != StateRunning {
		t.Fatalf("the task with the exec: %+v, %v", info, err)
	}

	// Starting a stopped task again runs it anew.
	if err := e.ex.Start(ctx, quitter); err != nil {
		t.Fatal(err)
	}
	if ex := waitExit(t, exits, quitter); ex.Code != 3 {
		t.Fatalf("restarted task exited %d", ex.Code)
	}
}

func TestNamedVolumeSurvivesReplacement(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	exits := e.exits()
	mounts := []spec.Mount{{Type: spec.MountVolume, Source: "data", Target: "/data"}, {Type: spec.MountVolume, Target: "/anon"}}

	writer := service("db", "sh", "-c", "echo kept > /data/f; echo lost > /anon/f")
	writer.Mounts = mounts
	id := e.run("t-vol1", writer)
	if ex := waitExit(t, exits, id); ex.Code != 0 {
		t.Fatalf("writer exited %d: %s", ex.Code, e.logs(id))
	}
	if err := e.ex.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.ex.anonymousDir(id)); !os.IsNotExist(err) {
		t.Fatalf("anonymous volume left after remove: %v", err)
	}
	if st, err := os.Stat(e.ex.VolumeDir("st_data")); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("volume directory: %v, %v", st, err)
	}

	reader := service("db", "sh", "-c", "cat /data/f; ls /anon | wc -l")
	reader.Mounts = mounts
	id = e.run("t-vol2", reader)
	if ex := waitExit(t, exits, id); ex.Code != 0 {
		t.Fatalf("reader exited %d", ex.Code)
	}
	if logs := e.waitLogs(id, "kept"); !strings.Contains(logs, "kept\n0\n") {
		t.Fatalf("reader saw:\n%s", logs)
	}

	// The agent may map a source to a volume named in the stack file.
	named := service("db", "sh", "-c", "cat /data/f 2>&1")
	named.Mounts = mounts[:1]
	if err := e.ex.Create(ctx, Container{TaskID: "t-vol3", Stack: "st", Spec: named, Volumes: map[string]string{"data": "shared-data"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.ex.VolumeDir("shared-data")); err != nil {
		t.Fatalf("volume named by the agent: %v", err)
	}
}

func TestResourceLimitsInCgroup(t *testing.T) {
	e := newEnv(t)
	svc := service("limited", "sleep", "1000")
	svc.Deploy.Resources.Limits = &spec.Resource{CPUs: 500_000_000, MemoryBytes: 64 << 20, Pids: 50}
	id := e.run("t-limits", svc)
	info, err := e.ex.Inspect(context.Background(), id)
	if err != nil || info.Pid == 0 {
		t.Fatalf("inspect: %+v, %v", info, err)
	}
	mem, memV2 := cgroupFile(t, info.Pid, "memory", "memory.limit_in_bytes", "memory.max")
	pids, _ := cgroupFile(t, info.Pid, "pids", "pids.max", "pids.max")
	if mem != strconv.Itoa(64<<20) || pids != "50" {
		t.Fatalf("memory limit %q, pids limit %q (cgroup v2: %v)", mem, pids, memV2)
	}
	if memV2 {
		if cpu, _ := cgroupFile(t, info.Pid, "cpu", "", "cpu.max"); cpu != "50000 100000" {
			t.Fatalf("cpu.max %q", cpu)
		}
	} else if quota, _ := cgroupFile(t, info.Pid, "cpu", "cpu.cfs_quota_us", ""); quota != "50000" {
		t.Fatalf("cpu.cfs_quota_us %q", quota)
	}
}

// cgroupFile reads a controller's file of pid's cgroup from the host, from the v1
// hierarchy when the controller has one, else from the unified (v2) one.
func cgroupFile(t *testing.T, pid uint32, controller, v1file, v2file string) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	var unified string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			unified = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller && v1file != "" {
				v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", parts[1], parts[2], v1file))
				if err != nil {
					t.Fatal(err)
				}
				return strings.TrimSpace(string(v)), false
			}
		}
	}
	for _, mnt := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		if v, err := os.ReadFile(filepath.Join(mnt, unified, v2file)); err == nil {
			return strings.TrimSpace(string(v)), true
		}
	}
	t.Fatalf("no %s or %s for pid %d", v1file, v2file, pid)
	return "", false
}

func TestInitRunsAsPid1(t *testing.T) {
	e := newEnv(t)
	if _, err := e.ex.findInit(); err != nil {
		testenv.Unavailable(t, "no static init binary (Debian package tini): "+err.Error())
	}
	exits := e.exits()
	svc := service("init", "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo")
	on := true
	svc.Init = &on
	id := e.run("t-init", svc)
	if ex := waitExit(t, exits, id); ex.Code != 0 {
		t.Fatalf("exited %d: %s", ex.Code, e.logs(id))
	}
	if logs := e.waitLogs(id, initPath); !strings.HasPrefix(logs, initPath+" -- sh -c") {
		t.Fatalf("pid 1 is not the init: %q", logs)
	}
}

func TestCreateRejectsBadSpecs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, c := range []struct {
		field string
		edit  func(*spec.Service)
	}{
		{"cap_add[0]", func(s *spec.Service) { s.CapAdd = []string{"NET_WIZARD"} }},
		{"devices[0].source", func(s *spec.Service) { s.Devices = []spec.Device{{Source: "/etc/passwd"}} }},
		{"mounts[0].source", func(s *spec.Service) {
			s.Mounts = []spec.Mount{{Type: spec.MountBind, Source: "/no/such/dir", Target: "/x"}}
		}},
		{"sysctls", func(s *spec.Service) { s.Sysctls = map[string]string{"kernel.panic": "1"} }},
		{"ulimits", func(s *spec.Service) { s.Ulimits = map[string]spec.Ulimit{"bogus": {Soft: 1, Hard: 1}} }},
		{"stop_signal", func(s *spec.Service) { s.StopSignal = "SIGWHATEVER" }},
		{"user", func(s *spec.Service) { s.User = "nosuchuser" }},
	} {
		svc := service("bad", "true")
		c.edit(svc)
		err := e.ex.Create(ctx, Container{TaskID: "t-bad", Spec: svc})
		if err == nil {
			t.Errorf("%s: created", c.field)
			e.ex.Remove(ctx, "t-bad")
			continue
		}
		if !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: error does not name the field: %v", c.field, err)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v is not ErrInvalid", c.field, err)
		}
	}
	if err := e.ex.Create(ctx, Container{TaskID: "t-noimg", Spec: &spec.Service{Image: "berth.test/missing:1"}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing image: %v, want ErrNotFound", err)
	}
	if err := e.ex.Start(ctx, "no-such-task"); !errors.Is(err, ErrNotFound) {
		t.Errorf("start of a missing task: %v, want ErrNotFound", err)
	}
	if _, _, err := e.ex.Exec(ctx, "no-such-task", []string{"true"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("exec in a missing task: %v, want ErrNotFound", err)
	}
	if err := e.ex.Create(ctx, Container{TaskID: "../escape", Spec: service("x", "true")}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad task id: %v, want ErrInvalid", err)
	}
}

// TestLogsRotateAndOutliveTheClient checks that the driver rotates a task's log with the
// executor's settings, and that it belongs to containerd's shim, so that it keeps writing
// while no berth runs.
func TestLogsRotateAndOutliveTheClient(t *testing.T) {
	e := newEnv(t, WithLogRotation(4096, 2))
	ctx := context.Background()
	id := e.run("t-chatty", service("chatty", "sh", "-c", "seq 1 2000; while :; do echo tick; sleep 0.1; done"))
	e.waitLogs(id, "tick")
	dir := e.ex.logDir(id)
	requireRotated(t, dir)
	var tail strings.Builder
	if err := e.ex.Logs(ctx, id, LogOptions{Tail: 1}, &tail); err != nil || tail.String() != "tick\n" {
		t.Fatalf("tail 1: %q, %v", tail.String(), err)
	}

	driver := logDriverPid(t, dir)
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", driver))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command's closing parenthesis: state, ppid, ...
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	ppid, _ := strconv.Atoi(fields[1])
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", ppid))
	if ppid == os.Getpid() || !strings.HasPrefix(string(comm), "containerd-shim") {
		t.Fatalf("log driver %d is a child of %d (%q), not of the shim", driver, ppid, strings.TrimSpace(string(comm)))
	}

	// With the executor closed, the driver goes on writing.
	e.ex.Close()
	before := e.logs(id)
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(e.logs(id), "tick") <= strings.Count(before, "tick") {
		if time.Now().After(deadline) {
			t.Fatal("no new log lines after the executor closed")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A service's logging: options rotate its task's log over the node's rotation.
func TestLogsRotateAsTheServiceSays(t *testing.T) {
	e := newEnv(t)
	svc := service("chatty", "sh", "-c", "seq 1 2000; while :; do echo tick; sleep 0.1; done")
	svc.Logging = &spec.Logging{MaxSize: 4096, MaxFiles: 2}
	id := e.run("t-chatty", svc)
	e.waitLogs(id, "tick")
	requireRotated(t, e.ex.logDir(id))
}

// requireRotated fails unless dir holds two log files of at most 4096 bytes each.
func requireRotated(t *testing.T, dir string) {
	t.Helper()
	for _, name := range []string{"container.log", "container.log.1"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Size() > 4096 {
			t.Fatalf("%s: %v, %v", name, st, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "container.log.2")); !os.IsNotExist(err) {
		t.Fatalf("a third log file exists with max files 2: %v", err)
	}
}

// logDriverPid finds the driver process writing into dir.
func logDriverPid(t *testing.T, dir string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if slices.Contains(args, "--berth-log-driver") && slices.Contains(args, dir) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			return pid
		}
	}
	t.Fatalf("no log driver process for %s", dir)
	return 0
}

func TestCapabilitiesPrivilegedAndDevices(t *testing.T) {
	e := newEnv(t)
	exits := e.exits()
	capEff := func(id string) uint64 {
		t.Helper()
		if ex := waitExit(t, exits, id); ex.Code != 0 {
			t.Fatalf("%s exited %d: %s", id, ex.Code, e.logs(id))
		}
		logs := e.waitLogs(id, "CapEff")
		_, hexcaps, _ := strings.Cut(logs, "CapEff:\t")
		v, err := strconv.ParseUint(strings.Fields(hexcaps)[0], 16, 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", id, logs, err)
		}
		return v
	}
	const netAdmin, netRaw, sysAdmin = 1 << 12, 1 << 13, 1 << 21

	tuned := service("tuned", "sh", "-c", "grep CapEff /proc/self/status")
	tuned.CapAdd = []string{"NET_ADMIN"}
	tuned.CapDrop = []string{"net_raw"}
	if c := capEff(e.run("t-caps", tuned)); c&netAdmin == 0 || c&netRaw != 0 || c&sysAdmin != 0 {
		t.Fatalf("cap_add NET_ADMIN, cap_drop NET_RAW: CapEff %#x", c)
	}

	dev := service("dev", "sh", "-c", "echo x > /dev/sink && echo dev=ok; grep CapEff /proc/self/status")
	dev.Devices = []spec.Device{{Source: "/dev/null", Target: "/dev/sink", Permissions: "rw"}}
	id := e.run("t-dev", dev)
	capEff(id)
	if !strings.Contains(e.logs(id), "dev=ok") {
		t.Fatalf("device not usable: %s", e.logs(id))
	}

	priv := service("priv", "sh", "-c", "grep CapEff /proc/self/status")
	priv.Privileged = true
	if c := capEff(e.run("t-priv", priv)); c&sysAdmin == 0 {
		t.Fatalf("privileged: CapEff %#x lacks CAP_SYS_ADMIN", c)
	}
}

func TestSecurityOptions(t *testing.T) {
	e := newEnv(t)
	exits := e.exits()
	const probe = `sed -nE 's/^(Seccomp|NoNewPrivs):\s*/\1=/p' /proc/self/status; ` +
		`mkdir /tmp/new 2>/dev/null && echo mkdir=ok || echo mkdir=denied; ` +
		`echo "keys-masks=$(grep -c ' /proc/keys ' /proc/self/mountinfo)"; ` +
		`echo "memory=$(cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null)"; ` +
		`d=/sys/fs/cgroup/memory; [ -d $d ] || d=/sys/fs/cgroup; mkdir $d/sub 2>/dev/null && echo cgroup=rw || echo cgroup=ro; echo done`
	denyMkdir := `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
		"includes": {"caps": ["CAP_CHOWN"]}}, {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_CHOWN"]}}]}`
	cases := []struct {
		name string
		set  func(*spec.Service)
		want []string
	}{
		// As Docker: the default seccomp profile, new privileges allowed, /proc/keys
		// masked, and the task's own cgroups at /sys/fs/cgroup, read-only.
		{"default", func(s *spec.Service) {
			s.Deploy.Resources.Limits = &spec.Resource{MemoryBytes: 64 << 20}
		}, []string{"Seccomp=2", "NoNewPrivs=0", "mkdir=ok", "keys-masks=1", "memory=67108864", "cgroup=ro"}},
		{"unconfined", func(s *spec.Service) { s.Seccomp = &spec.Seccomp{Unconfined: true} }, []string{"Seccomp=0", "mkdir=ok"}},
		// The rule that denies mkdir applies only with CAP_CHOWN, which tasks have by
		// default: the node resolves a profile's conditions against the task's own caps.
		{"own profile", func(s *spec.Service) { s.Seccomp = &spec.Seccomp{File: "deny-mkdir.json", Profile: denyMkdir} },
			[]string{"Seccomp=2", "mkdir=denied"}},
		{"own profile without the capability", func(s *spec.Service) {
			s.Seccomp = &spec.Seccomp{File: "deny-mkdir.json", Profile: denyMkdir}
			s.CapDrop = []string{"CHOWN"}
		}, []string{"Seccomp=2", "mkdir=ok"}},
		{"no-new-privileges", func(s *spec.Service) { s.NoNewPrivileges = true }, []string{"NoNewPrivs=1"}},
		{"system paths and cgroups", func(s *spec.Service) { s.SystemPathsUnconfined, s.WritableCgroups = true, true },
			[]string{"keys-masks=0", "cgroup=rw"}},
	}
	for i, c := range cases {
		svc := service("security", "sh", "-c", probe)
		c.set(svc)
		id := e.run(fmt.Sprintf("t-sec-%d", i), svc)
		if ex := waitExit(t, exits, id); ex.Code != 0 {
			t.Fatalf("%s: exited %d: %s", c.name, ex.Code, e.logs(id))
		}
		logs := e.waitLogs(id, "done")
		for _, w := range c.want {
			if !strings.Contains(logs, w) {
				t.Errorf("%s: output lacks %q: %s", c.name, w, logs)
			}
		}
	}
}

// What containerd makes of a file that is not an image archive (not a tar file, a tar
// file of other files) reaches the user as what the file should be and how to make one.
func TestImportImageOfNoArchive(t *testing.T) {
	e := newEnv(t)
	_, err := e.ex.ImportImage(context.Background(), strings.NewReader(strings.Repeat("not an image archive\n", 100)))
	if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "the file is not a whole Docker or OCI image archive (tar: ") ||
		!strings.Contains(err.Error(), "docker save") {
		t.Fatalf("ImportImage of a text file: %v", err)
	}
	var plain bytes.Buffer
	tw := tar.NewWriter(&plain)
	_ = tw.WriteHeader(&tar.Header{Name: "notes.txt", Mode: 0o644, Size: 5})
	_, _ = tw.Write([]byte("hello"))
	_ = tw.Close()
	if _, err = e.ex.ImportImage(context.Background(), &plain); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "no image archive") {
		t.Fatalf("ImportImage of a tar archive of a text file: %v", err)
	}
}
