package daemon

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berthd/berth/cluster/store/sealed"
)

// A backup is a gzipped tar of what a manager needs to come back as itself: its node
// file, its certificates and key, its keyring (the data key wrapped by the unlock key
// with autolock, as on disk) and a raft snapshot of the whole state, sealed. Swarm's
// documented backup is a copy of /var/lib/docker/swarm with the daemon stopped; this
// one is taken while the manager runs, from a snapshot raft never modifies.

// backupFiles are the data dir's files a backup holds, besides the snapshot.
var backupFiles = []string{nodeFileName, path.Join(certsDir, caCertFile), path.Join(certsDir, nodeCertFile),
	path.Join(certsDir, nodeKeyFile), path.Join(raftDir, sealed.KeyringFile)}

// backupOptional are the files a backup holds when the data dir has them: the
// previous root, trusted while a root CA rotation is under way.
var backupOptional = []string{path.Join(certsDir, trustedFile)}

// Backup writes a backup of this manager to w (the local socket only: it holds the
// node's key).
func (n *Node) Backup(ctx context.Context, w io.Writer) error {
	m, err := n.readyManager()
	if err != nil {
		return err
	}
	snap, err := m.st.SnapshotNow()
	if err != nil {
		return err
	}
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for _, name := range backupFiles {
		if err := addFile(tw, n.dir.path(filepath.FromSlash(name)), name); err != nil {
			return err
		}
	}
	for _, name := range backupOptional {
		src := n.dir.path(filepath.FromSlash(name))
		if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := addFile(tw, src, name); err != nil {
			return err
		}
	}
	for _, f := range []string{"meta.json", "state.bin"} {
		if err := addFile(tw, filepath.Join(snap, f), path.Join(raftDir, "snapshots", filepath.Base(snap), f)); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return gz.Close()
}

func addFile(tw *tar.Writer, src, name string) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: st.Size(), ModTime: st.ModTime(), Typeflag: tar.TypeReg}); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("backup of %s: %w", name, err)
	}
	return nil
}

// ErrNotEmpty: a restore would overwrite a node's state.
var ErrNotEmpty = errors.New("the data dir already holds a node")

// RestoreBackup unpacks a backup into dir, a data dir without a node, for `berth
// daemon --data-dir dir` to start as the manager it was; `swarm init
// --force-new-cluster` then makes it its cluster's only manager. A backup holds the
// files of backupFiles, those of backupOptional it had, and one snapshot, nothing else.
func RestoreBackup(r io.Reader, dir string) error {
	if _, err := os.Stat(filepath.Join(dir, nodeFileName)); err == nil {
		return fmt.Errorf("restore into %s: %w: restore into an empty folder", dir, ErrNotEmpty)
	}
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("restore: not a berth backup (gzip): %w", err)
	}
	tr := tar.NewReader(gz)
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("restore: not a berth backup (tar): %w", err)
		}
		if !backupName(h.Name) || h.Typeflag != tar.TypeReg {
			return fmt.Errorf("restore: %s is not part of a berth backup", h.Name)
		}
		if err := writeRestored(filepath.Join(dir, filepath.FromSlash(h.Name)), tr); err != nil {
			return err
		}
		seen[h.Name] = true
	}
	for _, name := range backupFiles {
		if !seen[name] {
			return fmt.Errorf("restore: the backup lacks %s", name)
		}
	}
	return nil
}

// backupName reports whether name is one a backup holds: the fixed files, or a
// snapshot's two files in a folder of its own.
func backupName(name string) bool {
	if slices.Contains(backupFiles, name) || slices.Contains(backupOptional, name) {
		return true
	}
	rest, ok := strings.CutPrefix(name, raftDir+"/snapshots/")
	dir, file, _ := strings.Cut(rest, "/")
	return ok && fs.ValidPath(rest) && dir != "" && !strings.Contains(dir, "..") && (file == "meta.json" || file == "state.bin")
}

func writeRestored(dst string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("restore %s: %w", dst, err)
	}
	return f.Close()
}
