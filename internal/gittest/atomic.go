package gittest

import (
	"path"

	"github.com/go-git/go-billy/v5"
)

// renamingFS makes go-git write a repository's files as git does: into a new file
// renamed over the old one. go-git truncates a ref and writes it again, so that a
// fetch reading the repository while a test commits could see the branch empty
// (real git then advertises it with a zero id) instead of the old tip or the new.
type renamingFS struct{ billy.Filesystem }

// Capabilities hides read-write opening: go-git then writes refs with Create.
func (fs renamingFS) Capabilities() billy.Capability {
	return billy.Capabilities(fs.Filesystem) &^ billy.ReadAndWriteCapability
}

func (fs renamingFS) Create(name string) (billy.File, error) {
	f, err := fs.TempFile(path.Dir(name), ".tmp-"+path.Base(name))
	if err != nil {
		return nil, err
	}
	return &renameOnClose{File: f, fs: fs.Filesystem, to: name}, nil
}

// renameOnClose puts a written file in its place when it is closed.
type renameOnClose struct {
	billy.File
	fs billy.Filesystem
	to string
}

func (f *renameOnClose) Close() error {
	if err := f.File.Close(); err != nil {
		return err
	}
	return f.fs.Rename(f.File.Name(), f.to)
}
