package applier

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// maxSymlinkHops bounds symlink resolution, as the kernel's ELOOP does (40 on Linux).
const maxSymlinkHops = 40

var errSymlinkEscapes = errors.New("symbolic link points outside the repository")

// treeFS serves a Git tree as a read-only file system, straight from the object store.
//
// Symbolic links are followed like a checkout would, as long as they stay inside the
// tree: a link that is absolute or climbs above the root is an error, because what it
// points to is not part of the revision. Lstat and ReadLink (fs.ReadLinkFS) see the link
// itself. Submodules (gitlinks) show as empty directories, as in a checkout without
// `git submodule update`. File contents are read whole into memory when opened.
type treeFS struct {
	// mu is the owning Repository's lock: every object read and the cache go under it.
	mu      *sync.Mutex
	objects storer.EncodedObjectStorer
	root    plumbing.Hash
	modTime time.Time
	// trees caches decoded trees by hash; the same subtree is looked up once per path
	// element of every file read.
	trees map[plumbing.Hash]*object.Tree
}

var (
	_ fs.ReadDirFS  = (*treeFS)(nil)
	_ fs.ReadFileFS = (*treeFS)(nil)
	_ fs.StatFS     = (*treeFS)(nil)
	_ fs.ReadLinkFS = (*treeFS)(nil)
)

func newTreeFS(mu *sync.Mutex, objects storer.EncodedObjectStorer, root plumbing.Hash, modTime time.Time) *treeFS {
	return &treeFS{mu: mu, objects: objects, root: root, modTime: modTime, trees: map[plumbing.Hash]*object.Tree{}}
}

// node is one resolved entry of the tree.
type node struct {
	name string // base name, "." for the root
	mode filemode.FileMode
	hash plumbing.Hash
}

func (n node) isDir() bool { return n.mode == filemode.Dir || n.mode == filemode.Submodule }

func (f *treeFS) Open(name string) (fs.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup("open", name, true)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		entries, err := f.readDir("open", name, n)
		if err != nil {
			return nil, err
		}
		return &treeDir{info: f.info(n, 0), entries: entries}, nil
	}
	data, err := f.blob("open", name, n.hash)
	if err != nil {
		return nil, err
	}
	return &treeFile{info: f.info(n, int64(len(data))), Reader: bytes.NewReader(data)}, nil
}

func (f *treeFS) ReadFile(name string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup("readfile", name, true)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: errors.New("is a directory")}
	}
	return f.blob("readfile", name, n.hash)
}

func (f *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !n.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return f.readDir("readdir", name, n)
}

func (f *treeFS) Stat(name string) (fs.FileInfo, error) {
	return f.stat("stat", name, true)
}

func (f *treeFS) Lstat(name string) (fs.FileInfo, error) {
	return f.stat("lstat", name, false)
}

func (f *treeFS) ReadLink(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup("readlink", name, false)
	if err != nil {
		return "", err
	}
	if n.mode != filemode.Symlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: errors.New("not a symbolic link")}
	}
	target, err := f.blob("readlink", name, n.hash)
	return string(target), err
}

func (f *treeFS) stat(op, name string, follow bool) (fs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup(op, name, follow)
	if err != nil {
		return nil, err
	}
	return f.statNode(op, name, n)
}

// statNode builds the FileInfo of n, reading a blob's size from its object header;
// f.mu must be held.
func (f *treeFS) statNode(op, name string, n node) (fs.FileInfo, error) {
	if n.isDir() {
		return f.info(n, 0), nil
	}
	obj, err := f.objects.EncodedObject(plumbing.BlobObject, n.hash)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("read blob %s: %w", n.hash, err)}
	}
	return f.info(n, obj.Size()), nil
}

// lookup walks name down from the root, following symlinks in every element, and in the
// last one too when followLast is set; f.mu must be held.
func (f *treeFS) lookup(op, name string, followLast bool) (node, error) {
	if !fs.ValidPath(name) {
		return node{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	p := name
	for hops := 0; ; hops++ {
		if hops > maxSymlinkHops {
			return node{}, &fs.PathError{Op: op, Path: name, Err: errors.New("too many levels of symbolic links")}
		}
		n, next, err := f.walk(op, name, p, followLast)
		if err != nil {
			return node{}, err
		}
		if next == "" {
			// Named as asked, like os.Stat on a symlink, not after the link's target.
			n.name = path.Base(name)
			return n, nil
		}
		p = next
	}
}

// walk resolves p element by element. It returns the node, or, on meeting a symlink to
// follow, the path to walk instead.
func (f *treeFS) walk(op, name, p string, followLast bool) (node, string, error) {
	cur := node{name: ".", mode: filemode.Dir, hash: f.root}
	if p == "." {
		return cur, "", nil
	}
	elems := strings.Split(p, "/")
	for i, elem := range elems {
		if cur.mode != filemode.Dir {
			// A path through a file or an unfetched submodule.
			return node{}, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		t, err := f.tree(cur.hash)
		if err != nil {
			return node{}, "", &fs.PathError{Op: op, Path: name, Err: err}
		}
		e, ok := findEntry(t, elem)
		if !ok {
			return node{}, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		last := i == len(elems)-1
		if e.Mode == filemode.Symlink && (!last || followLast) {
			target, err := f.blob(op, name, e.Hash)
			if err != nil {
				return node{}, "", err
			}
			// The elements before i are real directories (any symlink among them was
			// followed already), so ".." in the target can be resolved lexically.
			next := path.Join(append([]string{path.Join(elems[:i]...), string(target)}, elems[i+1:]...)...)
			if path.IsAbs(string(target)) || next == ".." || strings.HasPrefix(next, "../") {
				return node{}, "", &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("%w: %s -> %s", errSymlinkEscapes, path.Join(elems[:i+1]...), target)}
			}
			if next == "" {
				next = "."
			}
			return node{}, next, nil
		}
		cur = node{name: elem, mode: e.Mode, hash: e.Hash}
	}
	return cur, "", nil
}

// findEntry finds a name in a tree. Git sorts entries with directories compared as
// "name/", so binary search by plain name is not valid; trees are small, scan them.
func findEntry(t *object.Tree, name string) (object.TreeEntry, bool) {
	for _, e := range t.Entries {
		if e.Name == name {
			return e, true
		}
	}
	return object.TreeEntry{}, false
}

// tree returns the decoded tree h, from the cache when possible; f.mu must be held.
func (f *treeFS) tree(h plumbing.Hash) (*object.Tree, error) {
	if t, ok := f.trees[h]; ok {
		return t, nil
	}
	t, err := object.GetTree(f.objects, h)
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	f.trees[h] = t
	return t, nil
}

// blob reads a whole blob; f.mu must be held.
func (f *treeFS) blob(op, name string, h plumbing.Hash) ([]byte, error) {
	b, err := object.GetBlob(f.objects, h)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("read blob %s: %w", h, err)}
	}
	r, err := b.Reader()
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("read blob %s: %w", h, err)}
	}
	defer r.Close()
	data := make([]byte, 0, b.Size)
	buf := bytes.NewBuffer(data)
	if _, err := io.Copy(buf, r); err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("read blob %s: %w", h, err)}
	}
	return buf.Bytes(), nil
}

// readDir lists directory n sorted by name, as fs.ReadDir promises; f.mu must be held.
func (f *treeFS) readDir(op, name string, n node) ([]fs.DirEntry, error) {
	if n.mode == filemode.Submodule {
		return []fs.DirEntry{}, nil
	}
	t, err := f.tree(n.hash)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	entries := make([]fs.DirEntry, 0, len(t.Entries))
	for _, e := range t.Entries {
		entries = append(entries, &treeDirEntry{fsys: f, dir: name, node: node{name: e.Name, mode: e.Mode, hash: e.Hash}})
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, nil
}

func (f *treeFS) info(n node, size int64) *treeInfo {
	return &treeInfo{name: n.name, size: size, mode: fileMode(n.mode), modTime: f.modTime}
}

// fileMode maps Git's few modes onto fs modes; a tree records no other permissions.
func fileMode(m filemode.FileMode) fs.FileMode {
	switch m {
	case filemode.Dir, filemode.Submodule:
		return fs.ModeDir | 0o755
	case filemode.Executable:
		return 0o755
	case filemode.Symlink:
		return fs.ModeSymlink | 0o777
	default:
		return 0o644
	}
}

// treeInfo is the fs.FileInfo of a tree entry. ModTime is the commit's committer time:
// a tree holds no per-file times.
type treeInfo struct {
	name    string
	size    int64
	mode    fs.FileMode
	modTime time.Time
}

func (i *treeInfo) Name() string       { return i.name }
func (i *treeInfo) Size() int64        { return i.size }
func (i *treeInfo) Mode() fs.FileMode  { return i.mode }
func (i *treeInfo) ModTime() time.Time { return i.modTime }
func (i *treeInfo) IsDir() bool        { return i.mode.IsDir() }
func (i *treeInfo) Sys() any           { return nil }

// treeDirEntry is a directory entry; Info reads the blob's size only when asked.
type treeDirEntry struct {
	fsys *treeFS
	dir  string
	node node
}

func (e *treeDirEntry) Name() string      { return e.node.name }
func (e *treeDirEntry) IsDir() bool       { return e.node.isDir() }
func (e *treeDirEntry) Type() fs.FileMode { return fileMode(e.node.mode).Type() }
func (e *treeDirEntry) String() string    { return fs.FormatDirEntry(e) }

func (e *treeDirEntry) Info() (fs.FileInfo, error) {
	e.fsys.mu.Lock()
	defer e.fsys.mu.Unlock()
	return e.fsys.statNode("stat", path.Join(e.dir, e.node.name), e.node)
}

// treeFile is an open regular file, its content in memory.
type treeFile struct {
	info *treeInfo
	*bytes.Reader
}

func (f *treeFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *treeFile) Close() error               { return nil }

// treeDir is an open directory.
type treeDir struct {
	info    *treeInfo
	entries []fs.DirEntry
	offset  int
}

func (d *treeDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *treeDir) Close() error               { return nil }

func (d *treeDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}

func (d *treeDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.offset:]
	if n <= 0 {
		d.offset = len(d.entries)
		return slices.Clone(rest), nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.offset += n
	return slices.Clone(rest[:n]), nil
}
