package executor

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"

	"github.com/berthd/berth/spec"
)

type fakeResolver map[string][]netip.Addr

func (r fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if addrs, ok := r[host]; ok {
		return addrs, nil
	}
	return nil, errors.New("no such host")
}

func TestVolumeMountOptions(t *testing.T) {
	r := fakeResolver{"nas.example": {netip.MustParseAddr("::ffff:10.0.0.5")}}
	for _, tc := range []struct {
		name    string
		opts    map[string]string
		typ     string
		source  string
		options []string
		err     string
	}{
		{name: "nfs by address", opts: map[string]string{"type": "nfs", "o": "addr=10.0.0.9,rw,nfsvers=4", "device": ":/export"},
			typ: "nfs", source: ":/export", options: []string{"addr=10.0.0.9", "rw", "nfsvers=4"}},
		{name: "nfs by name", opts: map[string]string{"type": "nfs4", "o": "rw,addr=nas.example", "device": ":/export"},
			typ: "nfs4", source: ":/export", options: []string{"rw", "addr=10.0.0.5"}},
		{name: "unknown server", opts: map[string]string{"type": "nfs", "o": "addr=gone.example", "device": ":/export"},
			err: `NFS server "gone.example": cannot resolve it`},
		{name: "bind", opts: map[string]string{"type": "none", "o": "bind", "device": "/srv/shared"},
			typ: "none", source: "/srv/shared", options: []string{"bind"}},
		// Only NFS takes addr= as the kernel's own option.
		{name: "other type", opts: map[string]string{"type": "tmpfs", "o": "size=1m,addr=nas", "device": "tmpfs"},
			typ: "tmpfs", source: "tmpfs", options: []string{"size=1m", "addr=nas"}},
		{name: "no options", opts: map[string]string{"type": "tmpfs", "device": "tmpfs"}, typ: "tmpfs", source: "tmpfs"},
		// size, as docker's local driver takes it, bounds a tmpfs; o's own size= wins.
		{name: "tmpfs size", opts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "mode=0700", "size": "64m"},
			typ: "tmpfs", source: "tmpfs", options: []string{"mode=0700", "size=67108864"}},
		{name: "tmpfs size and o's size", opts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m", "size": "64m"},
			typ: "tmpfs", source: "tmpfs", options: []string{"size=1m"}},
		{name: "nfs size is not a mount option", opts: map[string]string{"type": "nfs", "o": "addr=10.0.0.9", "device": ":/export", "size": "1g"},
			typ: "nfs", source: ":/export", options: []string{"addr=10.0.0.9"}},
		{name: "bad size", opts: map[string]string{"type": "tmpfs", "device": "tmpfs", "size": "lots"},
			err: `driver_opts.size "lots" is not a size`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := volumeMount(context.Background(), r, tc.opts)
			if tc.err != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want ErrInvalid with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Type != tc.typ || m.Source != tc.source || !slices.Equal(m.Options, tc.options) {
				t.Fatalf("mount %+v, want type %s source %s options %q", m, tc.typ, tc.source, tc.options)
			}
		})
	}
}

// mountOf returns the mount at dir, or nil.
func mountOf(t *testing.T, dir string) *mountinfo.Info {
	t.Helper()
	ms, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		return nil
	}
	return ms[len(ms)-1]
}

func TestDriverVolumes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	exits := e.exits()
	// A test that fails leaves its mounts: the temporary directory goes only without.
	t.Cleanup(func() {
		dirs, _ := filepath.Glob(filepath.Join(e.root, "volumes", "*", "mount-*"))
		for _, d := range dirs {
			e.ex.unmountVolume(d)
		}
	})
	withVolume := func(svc *spec.Service, opts map[string]string) *spec.Service {
		svc.Mounts = []spec.Mount{{Type: spec.MountVolume, Source: "shared", Target: "/shared", DriverOpts: opts}}
		return svc
	}
	create := func(id string, svc *spec.Service) error {
		return e.ex.Create(ctx, Container{TaskID: id, TaskName: svc.Name + ".1", Stack: "st", Service: "st_" + svc.Name, Spec: svc})
	}
	dirOf := func(opts map[string]string) string {
		b, err := json.Marshal(opts)
		if err != nil {
			t.Fatal(err)
		}
		return e.ex.driverVolumeDir(driverVolume{name: "st_shared", opts: string(b)})
	}
	small := map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
	big := map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=2m"}

	// Two tasks share one mount of the volume: what one writes the other reads.
	writer := e.run("t-writer", withVolume(service("app", "sh", "-c", "echo shared > /shared/f"), small))
	if ex := waitExit(t, exits, writer); ex.Code != 0 {
		t.Fatalf("writer exited %d: %s", ex.Code, e.logs(writer))
	}
	reader := e.run("t-reader", withVolume(service("app", "sh", "-c", "cat /shared/f; sleep 60"), small))
	e.waitLogs(reader, "shared")
	if m := mountOf(t, dirOf(small)); m == nil || m.FSType != "tmpfs" || !strings.Contains(m.VFSOptions, "size=1024k") {
		t.Fatalf("volume mount: %+v, want a tmpfs of 1m", m)
	}

	// Other options while the old mount is in use (a start-first update to
	// another export): a second mount beside it.
	id := e.run("t-big", withVolume(service("app", "sh", "-c", "ls /shared | wc -l; sleep 60"), big))
	e.waitLogs(id, "0\n")
	if m := mountOf(t, dirOf(big)); m == nil || !strings.Contains(m.VFSOptions, "size=2048k") {
		t.Fatalf("volume mount: %+v, want a tmpfs of 2m", m)
	}

	// The last user of a mount removed, it is unmounted; the other stays.
	if err := e.ex.Remove(ctx, writer); err != nil {
		t.Fatal(err)
	}
	if mountOf(t, dirOf(small)) == nil {
		t.Fatal("volume unmounted while t-reader still uses it")
	}
	if err := e.ex.Remove(ctx, reader); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dirOf(small)); !os.IsNotExist(err) {
		t.Fatalf("the mount point is left after its last user went: %v", err)
	}
	if mountOf(t, dirOf(big)) == nil {
		t.Fatal("the mount with other options went too")
	}

	// A reboot takes the mount but not the container: it is mounted again at start.
	if err := e.ex.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.ex.unmountVolume(dirOf(big)); err != nil {
		t.Fatal(err)
	}
	if err := e.ex.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if m := mountOf(t, dirOf(big)); m == nil || !strings.Contains(m.VFSOptions, "size=2048k") {
		t.Fatalf("volume after start: %+v, want it mounted again", m)
	}
	if err := e.ex.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}

	// A bind of a node's directory, docker's type: none, o: bind: shared storage
	// that is mounted on the node by other means.
	export := t.TempDir()
	bind := map[string]string{"type": "none", "o": "bind", "device": export}
	id = e.run("t-bind", withVolume(service("app", "sh", "-c", "echo on-export > /shared/g"), bind))
	if ex := waitExit(t, exits, id); ex.Code != 0 {
		t.Fatalf("bind writer exited %d: %s", ex.Code, e.logs(id))
	}
	if b, err := os.ReadFile(filepath.Join(export, "g")); err != nil || string(b) != "on-export\n" {
		t.Fatalf("file on the export: %q, %v", b, err)
	}
	if err := e.ex.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dirOf(bind)); !os.IsNotExist(err) {
		t.Fatalf("bind volume's mount point left: %v", err)
	}
	// Unmounting left the export's data where it was.
	if _, err := os.Stat(filepath.Join(export, "g")); err != nil {
		t.Fatalf("export after unmount: %v", err)
	}

	// A mount the kernel refuses rejects the task and leaves nothing.
	bad := map[string]string{"type": "nosuchfs", "device": "x"}
	if err := create("t-bad", withVolume(service("app", "true"), bad)); err == nil || !strings.Contains(err.Error(), "mount nosuchfs x") {
		t.Fatalf("create with an unknown file system: %v", err)
	}
	if _, err := os.Stat(dirOf(bad)); !os.IsNotExist(err) {
		t.Fatalf("mount point left after a failed create: %v", err)
	}

	// A mount whose container was never made (a crash in between) goes with
	// ReleaseVolumes, which leaves a used one alone.
	if err := create("t-user", withVolume(service("app", "true"), small)); err != nil {
		t.Fatal(err)
	}
	if err := e.ex.mountVolumes(ctx, []driverVolume{{name: "st_shared", opts: `{"device":"tmpfs","type":"tmpfs"}`}}); err != nil {
		t.Fatal(err)
	}
	if err := e.ex.ReleaseVolumes(ctx); err != nil {
		t.Fatal(err)
	}
	if mountOf(t, dirOf(small)) == nil {
		t.Fatal("ReleaseVolumes unmounted a volume in use")
	}
	if left, _ := filepath.Glob(filepath.Join(e.root, "volumes", "st_shared", "mount-*")); len(left) != 1 {
		t.Fatalf("mount points after ReleaseVolumes: %v, want only the used one", left)
	}
}

// A volume's size applies to a tmpfs; a volume with only a size is the node's folder.
func TestVolumeSize(t *testing.T) {
	e := newEnv(t)
	t.Cleanup(func() {
		dirs, _ := filepath.Glob(filepath.Join(e.root, "volumes", "*", "mount-*"))
		for _, d := range dirs {
			e.ex.unmountVolume(d)
		}
	})
	run := func(id string, opts map[string]string) string {
		svc := service("app", "sh", "-c", "df -k /data | tail -1; sleep 60")
		svc.Mounts = []spec.Mount{{Type: spec.MountVolume, Source: "data", Target: "/data", DriverOpts: opts}}
		return e.run(id, svc)
	}
	tmpfs := map[string]string{"type": "tmpfs", "device": "tmpfs", "size": "2m"}
	id := run("t-sized", tmpfs)
	e.waitLogs(id, "tmpfs")
	b, _ := json.Marshal(tmpfs)
	if m := mountOf(t, e.ex.driverVolumeDir(driverVolume{name: "st_data", opts: string(b)})); m == nil || !strings.Contains(m.VFSOptions, "size=2048k") {
		t.Fatalf("volume mount: %+v, want a tmpfs of 2m", m)
	}
	id = run("t-plain", map[string]string{"size": "2m"})
	e.waitLogs(id, "/")
	if _, err := os.Stat(e.ex.VolumeDir("st_data")); err != nil {
		t.Fatalf("a volume with only a size is not the node's folder: %v", err)
	}
}
