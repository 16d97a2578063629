package executor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/docker/go-units"
	"github.com/moby/sys/mountinfo"

	"github.com/berthd/berth/spec"
)

// A volume with driver_opts (NFS, or any file system the node's kernel mounts) is
// mounted the way docker's local driver does it: device, of file system type, with
// options o; its size is a tmpfs's size= (docker's project quota on XFS berth does not
// set: other volumes with a size are only warned about). It is mounted once per node and set of options, however many tasks use
// it, on <root>/volumes/<name>/mount-<key>, key naming the options; containers bind
// that directory. Two sets of options (a volume pointed at another export while the
// old tasks still run, as a start-first update does) are two mounts side by side.
//
// Each container that uses such a volume carries the label io.berth.volume.<name>,
// whose value is the volume's options as JSON: the labels are how the executor
// counts a mount's users (the last one removed unmounts it), and how it mounts the
// volume again before starting a container after a reboot.
const labelVolumePrefix = "io.berth.volume."

// driverVolume is a volume with driver_opts as one container uses it.
type driverVolume struct {
	name string
	opts string // the options as JSON, the value of the container's label
}

// dir is where the volume is mounted with these options.
func (e *Executor) driverVolumeDir(v driverVolume) string {
	sum := sha256.Sum256([]byte(v.opts))
	return filepath.Join(filepath.Dir(e.VolumeDir(v.name)), "mount-"+hex.EncodeToString(sum[:6]))
}

// driverVolumes are the volumes of c that are mounted from elsewhere.
func driverVolumes(c Container) ([]driverVolume, error) {
	var out []driverVolume
	for _, m := range c.Spec.Mounts {
		if !mountedFromElsewhere(m) {
			continue
		}
		v, err := driverVolumeOf(c, m)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// mountedFromElsewhere tells whether m is a volume whose driver_opts name a device to
// mount; a size alone leaves the volume a folder of the node's.
func mountedFromElsewhere(m spec.Mount) bool {
	return m.Type == spec.MountVolume && m.Source != "" && m.DriverOpts["type"] != ""
}

// warnUnboundedVolumes says in the node's log which volumes of c ask for a size that
// this node does not enforce: berth bounds only a tmpfs (see spec.SizeUnenforced).
func (e *Executor) warnUnboundedVolumes(c Container) {
	for _, m := range c.Spec.Mounts {
		if m.Type == spec.MountVolume && spec.SizeUnenforced(m.DriverOpts) {
			e.log.Warn("volume size not enforced: berth bounds only tmpfs volumes, and this one is not",
				"task", c.TaskID, "volume", volumeName(c, m.Source), "size", m.DriverOpts["size"])
		}
	}
}

// driverVolumeOf is the volume with driver_opts that mount m of c uses.
func driverVolumeOf(c Container, m spec.Mount) (driverVolume, error) {
	b, err := json.Marshal(m.DriverOpts)
	if err != nil {
		return driverVolume{}, err
	}
	return driverVolume{name: volumeName(c, m.Source), opts: string(b)}, nil
}

// volumeName is the node's name of the named volume a mount's source refers to.
func volumeName(c Container, source string) string {
	if name, ok := c.Volumes[source]; ok {
		return name
	}
	return spec.FullName(c.Stack, source)
}

// volumeLabels are the labels that mark a container as a user of its driver volumes.
func volumeLabels(vols []driverVolume) map[string]string {
	out := make(map[string]string, len(vols))
	for _, v := range vols {
		out[labelVolumePrefix+v.name] = v.opts
	}
	return out
}

// labelledVolumes reads volumeLabels back from a container's labels.
func labelledVolumes(labels map[string]string) []driverVolume {
	var out []driverVolume
	for k, opts := range labels {
		if name, ok := strings.CutPrefix(k, labelVolumePrefix); ok {
			out = append(out, driverVolume{name: name, opts: opts})
		}
	}
	return out
}

// mountVolumes mounts the driver volumes that are not mounted yet. Call it with
// volumeMu held.
func (e *Executor) mountVolumes(ctx context.Context, vols []driverVolume) error {
	for _, v := range vols {
		if err := e.mountVolume(ctx, v); err != nil {
			return fmt.Errorf("volume %s: %w", v.name, err)
		}
	}
	return nil
}

func (e *Executor) mountVolume(ctx context.Context, v driverVolume) error {
	if !volumeNamePattern.MatchString(v.name) {
		return fmt.Errorf("%w: volume name %q: want letters, digits, '_', '.', '-'", ErrInvalid, v.name)
	}
	var opts map[string]string
	if err := json.Unmarshal([]byte(v.opts), &opts); err != nil {
		return fmt.Errorf("driver_opts: %w", err)
	}
	dir := e.driverVolumeDir(v)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("volume directory: %w", err)
	}
	mounted, err := mountinfo.Mounted(dir)
	if err != nil {
		return fmt.Errorf("is %s mounted: %w", dir, err)
	}
	if mounted {
		return nil
	}
	m, err := volumeMount(ctx, net.DefaultResolver, opts)
	if err != nil {
		return err
	}
	if err := m.Mount(dir); err != nil {
		_ = os.Remove(dir)
		return fmt.Errorf("mount %s %s (o=%s) on %s: %w: check that the node reaches the server and its kernel knows the file system",
			m.Type, m.Source, opts["o"], dir, err)
	}
	e.log.Info("mounted volume", "volume", v.name, "type", m.Type, "device", m.Source, "dir", dir)
	return nil
}

// remountVolumes mounts the driver volumes of a container about to start (its
// labels) that are not mounted: after a reboot its container outlives the mounts.
func (e *Executor) remountVolumes(ctx context.Context, labels map[string]string) error {
	vols := labelledVolumes(labels)
	if len(vols) == 0 {
		return nil
	}
	e.volumeMu.Lock()
	defer e.volumeMu.Unlock()
	return e.mountVolumes(ctx, vols)
}

// releaseVolumes unmounts the given mounts of driver volumes that no container uses
// any more. Call it with volumeMu held.
func (e *Executor) releaseVolumes(ctx context.Context, vols []driverVolume) error {
	var errs []error
	for _, v := range vols {
		used, err := e.volumeUsed(ctx, v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !used {
			errs = append(errs, e.unmountVolume(e.driverVolumeDir(v)))
		}
	}
	return errors.Join(errs...)
}

// ReleaseVolumes unmounts every mount of a volume with driver_opts that no container
// uses: those of containers removed by other means, or left by a crash between a
// mount and the container's creation. `berth leave` calls it after removing the
// containers.
func (e *Executor) ReleaseVolumes(ctx context.Context) error {
	dirs, err := filepath.Glob(filepath.Join(e.root, "volumes", "*", "mount-*"))
	if err != nil {
		return err
	}
	e.volumeMu.Lock()
	defer e.volumeMu.Unlock()
	users, err := e.client.Containers(e.nsctx(ctx))
	if err != nil {
		return wrap(err, "list containers")
	}
	used := map[string]bool{}
	for _, c := range users {
		info, err := c.Info(ctx, client.WithoutRefreshedMetadata)
		if err != nil {
			return wrap(err, "container info")
		}
		for _, v := range labelledVolumes(info.Labels) {
			used[e.driverVolumeDir(v)] = true
		}
	}
	var errs []error
	for _, d := range dirs {
		if !used[d] {
			errs = append(errs, e.unmountVolume(d))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("executor: %w", err)
	}
	return nil
}

// unmountVolume unmounts a driver volume's mount and removes its directory, which
// only an empty directory allows: the data on the device is never touched.
func (e *Executor) unmountVolume(dir string) error {
	mounted, err := mountinfo.Mounted(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("is %s mounted: %w", dir, err)
	}
	if mounted {
		if err := mount.UnmountAll(dir, 0); err != nil {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
		e.log.Info("unmounted volume", "dir", dir)
	}
	if err := os.Remove(dir); err != nil {
		return fmt.Errorf("remove the mount point: %w", err)
	}
	return nil
}

// volumeUsed reports whether a container uses the volume with these options.
func (e *Executor) volumeUsed(ctx context.Context, v driverVolume) (bool, error) {
	conts, err := e.client.Containers(e.nsctx(ctx), fmt.Sprintf("labels.%q", labelVolumePrefix+v.name))
	if err != nil {
		return false, wrap(err, "list the users of volume %s", v.name)
	}
	for _, c := range conts {
		info, err := c.Info(ctx, client.WithoutRefreshedMetadata)
		if err != nil {
			return false, wrap(err, "container info")
		}
		if info.Labels[labelVolumePrefix+v.name] == v.opts {
			return true, nil
		}
	}
	return false, nil
}

// resolver is the part of net.Resolver volumeMount needs.
type resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// volumeMount is the mount that docker's local driver makes of driver_opts. The kernel
// mounts NFS from an address, not a host name, so an NFS addr= is resolved first.
func volumeMount(ctx context.Context, r resolver, opts map[string]string) (mount.Mount, error) {
	var options []string
	if o := opts["o"]; o != "" {
		options = strings.Split(o, ",")
	}
	if t := opts["type"]; t == "nfs" || t == "nfs4" {
		for i, o := range options {
			host, ok := strings.CutPrefix(o, "addr=")
			if !ok {
				continue
			}
			if _, err := netip.ParseAddr(host); err == nil {
				continue
			}
			addrs, err := r.LookupNetIP(ctx, "ip", host)
			if err != nil || len(addrs) == 0 {
				return mount.Mount{}, fmt.Errorf("%w: driver_opts.o: NFS server %q: cannot resolve it (%v): give its address", ErrInvalid, host, err)
			}
			options[i] = "addr=" + addrs[0].Unmap().String()
		}
	}
	if size, ok := opts["size"]; ok && opts["type"] == "tmpfs" && !slices.ContainsFunc(options, func(o string) bool {
		return strings.HasPrefix(o, "size=")
	}) {
		n, err := units.RAMInBytes(size)
		if err != nil {
			return mount.Mount{}, fmt.Errorf("%w: driver_opts.size %q is not a size", ErrInvalid, size)
		}
		options = append(options, "size="+strconv.FormatInt(n, 10))
	}
	return mount.Mount{Type: opts["type"], Source: opts["device"], Options: options}, nil
}
