package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/runtime/executor"
)

// filesDir is the per-task tmpfs that holds secret and config content.
const filesDir = "files"

// defaultFileMode is Swarm's for secrets and configs: readable by everyone in the
// container, since its processes may run as any user.
const defaultFileMode = 0o444

// writeTaskFiles mounts a fresh tmpfs under dir, writes the secrets and configs
// there with their owner and mode, and returns the read-only bind mounts that put
// them at their targets. The content never touches persistent disk.
func writeTaskFiles(dir string, secrets, configs []api.RuntimeFile) ([]specs.Mount, error) {
	if len(secrets)+len(configs) == 0 {
		return nil, nil
	}
	root := filepath.Join(dir, filesDir)
	if err := unmountFiles(root); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	size := 1 << 20
	for _, f := range append(append([]api.RuntimeFile(nil), secrets...), configs...) {
		size += len(f.Data) + 4096
	}
	// noexec, nosuid, nodev: content, never programs or devices; the size bounds
	// what a task pins in memory.
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOEXEC|unix.MS_NOSUID|unix.MS_NODEV,
		"mode=0711,size="+strconv.Itoa(size)); err != nil {
		return nil, fmt.Errorf("secrets: mount a tmpfs at %s: %w", root, err)
	}
	var mounts []specs.Mount
	write := func(kind string, i int, f api.RuntimeFile) error {
		// Names on the tmpfs are the kind and position, not the secret's name, so
		// that no name can walk out of the directory.
		p := filepath.Join(root, kind+strconv.Itoa(i))
		mode := fs.FileMode(defaultFileMode)
		if f.Mode != nil {
			mode = fs.FileMode(*f.Mode) & fs.ModePerm
		}
		uid, err := idOf(f.UID)
		if err != nil {
			return fmt.Errorf("%s %s: uid: %w", kind, f.Name, err)
		}
		gid, err := idOf(f.GID)
		if err != nil {
			return fmt.Errorf("%s %s: gid: %w", kind, f.Name, err)
		}
		if err := os.WriteFile(p, f.Data, 0o600); err != nil {
			return fmt.Errorf("%s %s: %w", kind, f.Name, err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			return fmt.Errorf("%s %s: %w", kind, f.Name, err)
		}
		if err := os.Chmod(p, mode); err != nil {
			return fmt.Errorf("%s %s: %w", kind, f.Name, err)
		}
		mounts = append(mounts, executor.BindFile(p, f.Target, true))
		return nil
	}
	for i, f := range secrets {
		if err := write("secret", i, f); err != nil {
			return nil, errors.Join(err, unmountFiles(root))
		}
	}
	for i, f := range configs {
		if err := write("config", i, f); err != nil {
			return nil, errors.Join(err, unmountFiles(root))
		}
	}
	return mounts, nil
}

func idOf(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	id, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not a numeric ID", s)
	}
	return int(id), nil
}

// unmountFiles unmounts a task's tmpfs, if it is mounted.
func unmountFiles(root string) error {
	for {
		err := unix.Unmount(root, unix.MNT_DETACH)
		switch {
		case err == nil:
			// Mounted twice (a crash between mount and bookkeeping): go on.
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		default:
			return fmt.Errorf("unmount %s: %w", root, err)
		}
	}
}

// removeTaskFiles unmounts a task's tmpfs and removes its directory.
func removeTaskFiles(dir string) error {
	if err := unmountFiles(filepath.Join(dir, filesDir)); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}
