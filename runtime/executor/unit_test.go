package executor

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/runtime/logdriver"
	"github.com/berthd/berth/spec"
	"github.com/containerd/errdefs"
)

// These tests need no containerd.

func TestPingOnADeadSocket(t *testing.T) {
	ex, err := New(context.Background(), WithAddress(filepath.Join(t.TempDir(), "none.sock")), WithRoot(t.TempDir()))
	if err != nil {
		t.Fatalf("New must not need containerd: %v", err)
	}
	defer ex.Close()
	// containerd's dialer retries a missing socket until the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := ex.Ping(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ping: %v, want ErrUnavailable", err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for name, opt := range map[string]Option{
		"namespace":  WithNamespace("bad/ns"),
		"root":       WithRoot("relative"),
		"log driver": WithLogDriver("/no/such/binary"),
	} {
		if _, err := New(context.Background(), WithRoot(t.TempDir()), opt); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func TestMounts(t *testing.T) {
	e := &Executor{root: t.TempDir()}
	bind := t.TempDir()
	c := Container{TaskID: "t1", Stack: "web", Spec: &spec.Service{
		Mounts: []spec.Mount{
			{Type: spec.MountVolume, Source: "data", Target: "/var/lib/data/sub"},
			{Type: spec.MountVolume, Source: "data", Target: "/var/lib"},
			{Type: spec.MountBind, Source: bind, Target: "/etc/app", ReadOnly: true, Propagation: "rslave"},
			{Type: spec.MountTmpfs, Target: "/cache", TmpfsSize: 1 << 20, TmpfsMode: 0o1777},
			{Type: spec.MountVolume, Target: "/anon"},
		},
		Tmpfs: []string{"/run:size=64m,mode=755"},
	}}
	ms, err := e.mounts(c)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, m.Destination+" "+m.Type+" "+strings.Join(m.Options, ","))
	}
	// Parents before children, otherwise in the order given.
	want := []string{
		"/cache tmpfs nosuid,nodev,rw,size=1048576,mode=1777",
		"/anon bind rbind,rw,rprivate",
		"/run tmpfs noexec,nosuid,nodev,size=64m,mode=755",
		"/var/lib bind rbind,rw,rprivate",
		"/etc/app bind rbind,ro,rslave",
		"/var/lib/data/sub bind rbind,rw,rprivate",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("mounts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if ms[3].Source != e.VolumeDir("web_data") || ms[1].Source != filepath.Join(e.anonymousDir("t1"), "4") {
		t.Fatalf("sources: %s, %s", ms[3].Source, ms[1].Source)
	}
	if st, err := os.Stat(e.VolumeDir("web_data")); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("volume dir: %v, %v", st, err)
	}

	for field, m := range map[string]spec.Mount{
		"mounts[0].target":      {Type: spec.MountTmpfs, Target: "relative"},
		"mounts[0].type":        {Type: "nfs", Target: "/x"},
		"mounts[0].source":      {Type: spec.MountBind, Source: "/no/such/path", Target: "/x"},
		"mounts[0].propagation": {Type: spec.MountBind, Source: bind, Target: "/x", Propagation: "sideways"},
		"mounts[0].subpath":     {Type: spec.MountVolume, Source: "data", Target: "/x", Subpath: "../../etc"},
	} {
		_, err := e.mounts(Container{TaskID: "t2", Stack: "web", Spec: &spec.Service{Mounts: []spec.Mount{m}}})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	if _, err := e.mounts(Container{TaskID: "t3", Spec: &spec.Service{Tmpfs: []string{"/x:exec,size=1m,bogus"}}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad tmpfs option: %v", err)
	}
	twice := &spec.Service{Tmpfs: []string{"/x"}, Mounts: []spec.Mount{{Type: spec.MountTmpfs, Target: "/x/"}}}
	if _, err := e.mounts(Container{TaskID: "t4", Spec: twice}); !errors.Is(err, ErrInvalid) {
		t.Errorf("two mounts on one target: %v", err)
	}
}

func TestValidation(t *testing.T) {
	if _, err := capabilities([]string{"net_admin", "CAP_SYS_TIME", "ALL"}, []string{"mknod"}); err != nil {
		t.Fatalf("valid capabilities: %v", err)
	}
	if _, err := capabilities(nil, []string{"CAP_NOPE"}); err == nil || !strings.Contains(err.Error(), "cap_drop[0]") {
		t.Fatalf("unknown capability: %v", err)
	}
	if _, err := devices([]spec.Device{{Source: "/dev/null", Permissions: "rwx"}}); err == nil || !strings.Contains(err.Error(), "devices[0].permissions") {
		t.Fatalf("bad permissions: %v", err)
	}
	if _, err := devices([]spec.Device{{Source: "/dev/null", Target: "dev/null"}}); err == nil || !strings.Contains(err.Error(), "devices[0].target") {
		t.Fatalf("relative target: %v", err)
	}
	if _, err := sysctls(map[string]string{"net.core.somaxconn": "1024", "kernel.shmmax": "1", "fs.mqueue.msg_max": "10"}); err != nil {
		t.Fatalf("namespaced sysctls: %v", err)
	}
	if _, err := ulimits(map[string]spec.Ulimit{"nofile": {Soft: 10, Hard: 5}}); err == nil || !strings.Contains(err.Error(), "ulimits.nofile") {
		t.Fatalf("soft above hard: %v", err)
	}
	if _, err := ulimits(map[string]spec.Ulimit{"core": {Soft: -1, Hard: -1}}); err != nil {
		t.Fatalf("unlimited: %v", err)
	}
	if _, err := resources(spec.Resources{Limits: &spec.Resource{CPUs: 1_000_000}}); err == nil {
		t.Fatal("0.001 cpus accepted")
	}
	if _, err := resources(spec.Resources{Limits: &spec.Resource{MemoryBytes: 1 << 20}}); err == nil {
		t.Fatal("1 MiB memory limit accepted")
	}
	neg := spec.Duration(-time.Second)
	if _, err := stopSettings(&spec.Service{StopGracePeriod: &neg}); err == nil {
		t.Fatal("negative grace period accepted")
	}
	if l, err := stopSettings(&spec.Service{StopSignal: "USR1"}); err != nil || l[labelStopGrace] != "10s" {
		t.Fatalf("stop settings: %v, %v", l, err)
	}
	for _, id := range []string{"", "../x", "a/b", strings.Repeat("a", 77)} {
		if err := checkTaskID(id); !errors.Is(err, ErrInvalid) {
			t.Errorf("task id %q: %v", id, err)
		}
	}
}

// A service's logging: rotation reaches its log driver through the container's labels,
// over the node's (issue 18).
func TestLogConfig(t *testing.T) {
	node := logdriver.Config{MaxSize: 10 << 20, MaxFiles: 3}
	e := &Executor{logCfg: node}
	for _, tc := range []struct {
		name    string
		logging *spec.Logging
		labels  map[string]string // overrides of logLabels' output
		want    logdriver.Config
	}{
		{name: "node's rotation", want: node},
		{name: "service's size and files", logging: &spec.Logging{MaxSize: 4096, MaxFiles: 2}, want: logdriver.Config{MaxSize: 4096, MaxFiles: 2}},
		{name: "service's size only", logging: &spec.Logging{MaxSize: 4096}, want: logdriver.Config{MaxSize: 4096, MaxFiles: 3}},
		{name: "a label written by hand", labels: map[string]string{labelLogMaxSize: "big"}, want: node},
	} {
		t.Run(tc.name, func(t *testing.T) {
			labels := logLabels(tc.logging)
			maps.Copy(labels, tc.labels)
			tc.want.Dir = "/logs/t1"
			if got := e.logConfig(labels, "/logs/t1"); got != tc.want {
				t.Errorf("logConfig = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// A file that is no tar archive is refused with what it should be and how to make one;
// other import errors keep containerd's word.
func TestImportErrorSaysWhatTheFileShouldBe(t *testing.T) {
	_, tarErr := tar.NewReader(strings.NewReader(strings.Repeat("not a tar file\n", 64))).Next()
	if tarErr == nil {
		t.Fatal("a text file read as a tar archive")
	}
	for _, tc := range []struct {
		name        string
		err         error
		want        string
		wantInvalid bool
	}{
		{"not a tar file", fmt.Errorf("reading index: %w", tarErr), "the file is not a whole Docker or OCI image archive (tar: reading index: archive/tar: invalid tar header); make it with 'docker save -o FILE IMAGE'", true},
		{"truncated", io.ErrUnexpectedEOF, "the file is not a whole Docker or OCI image archive (tar: unexpected EOF)", true},
		{"a tar archive of other files", errors.New("unrecognized image format"), "the file is a tar archive but no image archive: it has neither the manifest.json", true},
		{"containerd down", errdefs.ErrUnavailable, "executor: import image archive: containerd unavailable", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := importError(tc.err)
			if !strings.HasPrefix(err.Error(), tc.want) || errors.Is(err, ErrInvalid) != tc.wantInvalid {
				t.Fatalf("importError = %v (invalid: %v), want %q (invalid: %v)", err, errors.Is(err, ErrInvalid), tc.want, tc.wantInvalid)
			}
		})
	}
}
