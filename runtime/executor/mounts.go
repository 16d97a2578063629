package executor

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/berthd/berth/spec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var volumeNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

var propagations = []string{"private", "rprivate", "shared", "rshared", "slave", "rslave"}

// The options a tmpfs entry of the short syntax may carry: flags, and keys of key=value.
var (
	tmpfsFlags  = []string{"ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev"}
	tmpfsValues = []string{"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"}
)

// mounts validates the service's mounts and tmpfs entries, makes the host directories of
// its volumes, and returns them with the agent's extra mounts, parents before children.
//
// A named volume is the directory <root>/volumes/<name>/_data (name from c.Volumes, else
// <stack>_<source>), made 0755 on first use and kept when tasks are removed (one with
// driver_opts is a mount, see driverVolume), so a replacement task finds the data. Unlike
// Docker, berth copies nothing from the image into a new volume (every volume behaves as
// if nocopy were set): images that expect their files to appear in an empty volume must
// create them at start. An anonymous volume (no source) lives as long as its task.
func (e *Executor) mounts(c Container) ([]specs.Mount, error) {
	var out []specs.Mount
	for i, m := range c.Spec.Mounts {
		field := fmt.Sprintf("mounts[%d]", i)
		if !filepath.IsAbs(m.Target) {
			return nil, fmt.Errorf("%w: %s.target %q must be an absolute path", ErrInvalid, field, m.Target)
		}
		switch m.Type {
		case spec.MountVolume, spec.MountBind:
			src, err := e.mountSource(c, i, m)
			if err != nil {
				return nil, err
			}
			prop := m.Propagation
			if prop == "" {
				prop = "rprivate"
			}
			if !slices.Contains(propagations, prop) {
				return nil, fmt.Errorf("%w: %s.propagation %q: want one of %s", ErrInvalid, field, m.Propagation, strings.Join(propagations, ", "))
			}
			out = append(out, specs.Mount{Type: "bind", Source: src, Destination: m.Target,
				Options: []string{"rbind", rwOption(m.ReadOnly), prop}})
		case spec.MountTmpfs:
			opts := []string{"nosuid", "nodev", rwOption(m.ReadOnly)}
			if m.TmpfsSize < 0 {
				return nil, fmt.Errorf("%w: %s.tmpfs_size %d is negative", ErrInvalid, field, m.TmpfsSize)
			}
			if m.TmpfsSize > 0 {
				opts = append(opts, "size="+strconv.FormatInt(m.TmpfsSize, 10))
			}
			if m.TmpfsMode != 0 {
				opts = append(opts, "mode="+strconv.FormatUint(uint64(m.TmpfsMode), 8))
			}
			out = append(out, specs.Mount{Type: "tmpfs", Source: "tmpfs", Destination: m.Target, Options: opts})
		default:
			return nil, fmt.Errorf("%w: %s.type %q: want volume, bind or tmpfs", ErrInvalid, field, m.Type)
		}
	}
	for i, t := range c.Spec.Tmpfs {
		m, err := tmpfsEntry(t)
		if err != nil {
			return nil, fmt.Errorf("%w: tmpfs[%d] %q: %v", ErrInvalid, i, t, err)
		}
		out = append(out, m)
	}
	for i, m := range c.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return nil, fmt.Errorf("%w: extra mount %d: destination %q must be an absolute path", ErrInvalid, i, m.Destination)
		}
		out = append(out, m)
	}
	seen := map[string]bool{}
	for _, m := range out {
		d := filepath.Clean(m.Destination)
		if seen[d] {
			return nil, fmt.Errorf("%w: mounts: two mounts on %s", ErrInvalid, d)
		}
		seen[d] = true
	}
	// Parents first, so a mount on /a/b is not hidden by a later one on /a.
	slices.SortStableFunc(out, func(a, b specs.Mount) int {
		return strings.Count(filepath.Clean(a.Destination), "/") - strings.Count(filepath.Clean(b.Destination), "/")
	})
	return out, nil
}

func rwOption(ro bool) string {
	if ro {
		return "ro"
	}
	return "rw"
}

// mountSource returns the host path of a volume or bind mount, making volume directories.
func (e *Executor) mountSource(c Container, i int, m spec.Mount) (string, error) {
	field := fmt.Sprintf("mounts[%d]", i)
	if m.Type == spec.MountBind {
		if !filepath.IsAbs(m.Source) {
			return "", fmt.Errorf("%w: %s.source %q: a bind mount needs an absolute host path", ErrInvalid, field, m.Source)
		}
		if _, err := os.Stat(m.Source); err != nil {
			return "", fmt.Errorf("%w: %s.source %q: the host path does not exist or cannot be read: %v", ErrInvalid, field, m.Source, err)
		}
		return m.Source, nil
	}
	var dir string
	if m.Source == "" {
		dir = filepath.Join(e.anonymousDir(c.TaskID), strconv.Itoa(i))
	} else {
		name := volumeName(c, m.Source)
		if !volumeNamePattern.MatchString(name) {
			return "", fmt.Errorf("%w: %s.source %q: volume name %q: want letters, digits, '_', '.', '-'", ErrInvalid, field, m.Source, name)
		}
		dir = e.VolumeDir(name)
		if mountedFromElsewhere(m) {
			// Mounted by Create (mountVolumes) before the mounts are made.
			v, err := driverVolumeOf(c, m)
			if err != nil {
				return "", err
			}
			dir = e.driverVolumeDir(v)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("executor: %s: volume directory: %w", field, err)
	}
	if m.Subpath == "" {
		return dir, nil
	}
	sub := filepath.Clean(m.Subpath)
	if filepath.IsAbs(sub) || sub == ".." || strings.HasPrefix(sub, "../") {
		return "", fmt.Errorf("%w: %s.subpath %q must stay inside the volume", ErrInvalid, field, m.Subpath)
	}
	src := filepath.Join(dir, sub)
	if _, err := os.Stat(src); err != nil {
		return "", fmt.Errorf("%w: %s.subpath %q does not exist in volume %q", ErrInvalid, field, m.Subpath, m.Source)
	}
	return src, nil
}

// tmpfsEntry parses the short syntax "path[:opt,opt=value]"; like Docker it mounts noexec,
// nosuid and nodev unless told otherwise.
func tmpfsEntry(t string) (specs.Mount, error) {
	path, optStr, _ := strings.Cut(t, ":")
	if !filepath.IsAbs(path) {
		return specs.Mount{}, fmt.Errorf("%q is not an absolute path", path)
	}
	opts := []string{"noexec", "nosuid", "nodev"}
	if optStr != "" {
		for _, o := range strings.Split(optStr, ",") {
			k, _, hasValue := strings.Cut(o, "=")
			if (hasValue && !slices.Contains(tmpfsValues, k)) || (!hasValue && !slices.Contains(tmpfsFlags, k)) {
				return specs.Mount{}, fmt.Errorf("unknown option %q", o)
			}
			opts = append(opts, o)
		}
	}
	return specs.Mount{Type: "tmpfs", Source: "tmpfs", Destination: path, Options: opts}, nil
}
