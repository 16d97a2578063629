package applier

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/revlist"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/berthd/berth/cluster/model"
)

// A push source's repository is replicated through raft: a push carries every object of
// its branch as one pack (packBranch) and the branch's new revision, and each manager
// writes them into its own copy (materializePush) before it reads or serves it. Objects
// are content-addressed, so every copy holds the same history.

// errPackTooLarge: the pushed branch's objects exceed what one raft entry may carry.
var errPackTooLarge = errors.New("the branch's objects take more than the limit of a push")

// packBranch returns every object reachable from tip in the repository in dir as one
// pack that needs no other object, of at most limit bytes.
func packBranch(dir string, tip plumbing.Hash, limit int) ([]byte, error) {
	// Open pack files stay open for the walk: go-git opens one per object read
	// otherwise, which made packing about twice as slow (BenchmarkPushPack).
	st := filesystem.NewStorageWithOptions(osfs.New(dir), cache.NewObjectLRUDefault(), filesystem.Options{KeepDescriptors: true})
	defer st.Close()
	hashes, err := revlist.Objects(st, []plumbing.Hash{tip}, nil)
	if err != nil {
		return nil, fmt.Errorf("list the objects of %s: %w", tip, err)
	}
	w := &cappedBuffer{max: limit}
	if _, err := packfile.NewEncoder(w, st, false).Encode(hashes, 0); err != nil {
		if errors.Is(err, errPackTooLarge) {
			return nil, fmt.Errorf("the branch's objects take more than %d MiB, the limit of a push source (every manager keeps them in its replicated state): use a pull source (berth source add --url) for a repository this large", limit>>20)
		}
		return nil, fmt.Errorf("pack the objects of %s: %w", tip, err)
	}
	return w.Bytes(), nil
}

// cappedBuffer fails a write that would take it past max bytes.
type cappedBuffer struct {
	bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		return 0, errPackTooLarge
	}
	return b.Buffer.Write(p)
}

// materializePush brings the push repository in dir to the revision the replicated
// state holds for src, creating the repository if needed. The state wins over what the
// repository says: a manager may hold a revision that was never acknowledged, or the
// repository of a removed source of the same name.
func materializePush(dir string, src *model.Source) error {
	repo, err := openPushRepo(dir)
	if err != nil {
		return err
	}
	name := plumbing.NewBranchReferenceName(src.Branch)
	if src.PushedRevision == "" {
		// Nothing pushed (or pushed before pushes were replicated: the next push
		// creates the branch again).
		if err := repo.Storer.RemoveReference(name); err != nil {
			return fmt.Errorf("push source %s: remove %s: %w", src.Name, name, err)
		}
		return nil
	}
	want := plumbing.NewHash(src.PushedRevision)
	for range 3 {
		cur, err := repo.Storer.Reference(name)
		if err != nil && !errors.Is(err, plumbing.ErrReferenceNotFound) {
			return fmt.Errorf("push source %s: read %s: %w", src.Name, name, err)
		}
		if err == nil && cur.Hash() == want {
			return nil
		}
		if repo.Storer.HasEncodedObject(want) != nil {
			if err := packfile.UpdateObjectStorage(repo.Storer, bytes.NewReader(src.PushPack.Bytes())); err != nil {
				return fmt.Errorf("push source %s: store the objects of %s: %w", src.Name, src.PushedRevision, err)
			}
		}
		// Against the value read: another reader of the state may be writing a newer one.
		err = repo.Storer.CheckAndSetReference(plumbing.NewHashReference(name, want), cur)
		if !errors.Is(err, storage.ErrReferenceHasChanged) {
			if err != nil {
				return fmt.Errorf("push source %s: set %s to %s: %w", src.Name, name, want, err)
			}
			return nil
		}
	}
	return fmt.Errorf("push source %s: %s keeps changing while it is set to %s", src.Name, name, want)
}

// openPushRepo opens the bare repository in dir, creating it when missing.
func openPushRepo(dir string) (*git.Repository, error) {
	repo, err := git.PlainOpen(dir)
	if !errors.Is(err, git.ErrRepositoryNotExists) {
		return repo, err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, err
	}
	repo, err = git.PlainInitWithOptions(dir, &git.PlainInitOptions{Bare: true, InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}})
	if errors.Is(err, git.ErrRepositoryAlreadyExists) {
		return git.PlainOpen(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("create the repository %s: %w", dir, err)
	}
	return repo, nil
}
