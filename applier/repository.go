package applier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/berthd/berth/cluster/model"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// ErrUnknownRevision is wrapped by the errors of Resolve and TreeFS when a revision names
// no commit of the repository.
var ErrUnknownRevision = errors.New("unknown revision")

// Repository is a Git repository read through go-git, without a work tree checkout.
//
// It is safe for concurrent use: go-git's object storage is not (its caches and pack
// indexes are unguarded maps), so every read of the object store, including those made
// through the file systems returned by TreeFS, is serialized on one lock.
type Repository struct {
	// mu guards repo and every object read; see the type comment.
	mu       sync.Mutex
	repo     *git.Repository
	location string
	// tmpDir is the clone's directory, removed by Close; empty for local repositories.
	tmpDir string
}

// isURL reports whether location names a remote to clone rather than a local path.
func isURL(location string) bool { return model.CheckGitURL(location) == nil }

// OpenRepository opens a local repository (a work tree's .git or a bare repo; path given
// as the work tree dir or the .git/bare dir) or, when location is a URL (http(s)://,
// ssh://, git@host:path, file://), clones it into a temporary directory that Close
// removes.
//
// A clone is bare and fetches every branch and tag. Every remote branch also gets a local
// branch of the same name, so "dev" resolves as well as "origin/dev", as it would in a
// fresh `git clone` followed by `git checkout dev`.
func OpenRepository(ctx context.Context, location string) (*Repository, error) {
	if location == "" {
		return nil, errors.New("open repository: empty location: give a directory or a Git URL")
	}
	if isURL(location) {
		return cloneRepository(ctx, location)
	}
	// First as a work tree root, a .git dir or a bare repository; then as a folder inside
	// a work tree. go-git's parent search alone would miss bare repositories.
	repo, err := git.PlainOpenWithOptions(location, &git.PlainOpenOptions{
		// Linked work trees (git worktree add) keep their objects in the common dir.
		EnableDotGitCommonDir: true,
	})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainOpenWithOptions(location, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	}
	if err != nil {
		if errors.Is(err, git.ErrRepositoryNotExists) {
			return nil, fmt.Errorf("open repository %s: no Git repository there or in any parent directory (run git init, or give a URL to clone)", location)
		}
		return nil, fmt.Errorf("open repository %s: %w", location, err)
	}
	return &Repository{repo: repo, location: location}, nil
}

// WrapRepository reads an already open go-git repository through the applier: the
// push server uses it to load the stacks of a pushed revision before its ref moves.
// The caller must not use repo's object store concurrently with the Repository.
func WrapRepository(repo *git.Repository, location string) *Repository {
	return &Repository{repo: repo, location: location}
}

func cloneRepository(ctx context.Context, url string) (*Repository, error) {
	dir, err := os.MkdirTemp("", "berth-clone-*")
	if err != nil {
		return nil, fmt.Errorf("clone %s: %w", url, err)
	}
	repo, err := git.PlainCloneContext(ctx, dir, true, &git.CloneOptions{
		URL:  url,
		Tags: git.AllTags,
	})
	if err == nil {
		err = trackRemoteBranches(repo)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("clone %s: %w", url, err)
		}
		return nil, fmt.Errorf("clone %s: %w (check the URL and that the repository is readable)", url, err)
	}
	return &Repository{repo: repo, location: url, tmpDir: dir}, nil
}

// trackRemoteBranches gives every refs/remotes/origin/X a refs/heads/X, so that branch
// names resolve in a bare clone.
func trackRemoteBranches(repo *git.Repository) error {
	refs, err := repo.References()
	if err != nil {
		return fmt.Errorf("list references: %w", err)
	}
	prefix := "refs/remotes/" + git.DefaultRemoteName + "/"
	var remote []*plumbing.Reference
	err = refs.ForEach(func(ref *plumbing.Reference) error {
		if ref.Type() == plumbing.HashReference && strings.HasPrefix(ref.Name().String(), prefix) {
			remote = append(remote, ref)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list references: %w", err)
	}
	for _, ref := range remote {
		local := plumbing.NewBranchReferenceName(strings.TrimPrefix(ref.Name().String(), prefix))
		if _, err := repo.Storer.Reference(local); err == nil {
			continue
		}
		if err := repo.Storer.SetReference(plumbing.NewHashReference(local, ref.Hash())); err != nil {
			return fmt.Errorf("create branch %s: %w", local.Short(), err)
		}
	}
	return nil
}

// Close releases the repository and removes the clone's directory, if any. The file
// systems returned by TreeFS must not be used afterwards.
func (r *Repository) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	if c, ok := r.repo.Storer.(io.Closer); ok {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close repository %s: %w", r.location, err))
		}
	}
	if r.tmpDir != "" {
		if err := os.RemoveAll(r.tmpDir); err != nil {
			errs = append(errs, fmt.Errorf("remove clone of %s: %w", r.location, err))
		}
		r.tmpDir = ""
	}
	return errors.Join(errs...)
}

// Resolve turns a revision (branch, tag, full or short SHA, HEAD, HEAD~1, origin/main...)
// into a full commit SHA.
func (r *Repository) Resolve(rev string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.resolveCommit(rev)
	if err != nil {
		return "", err
	}
	return c.Hash.String(), nil
}

// TreeFS returns the tree of the commit rev resolves to as an fs.FS, read-only and served
// from the object store without a checkout, and the commit's SHA.
//
// The FS implements fs.ReadDirFS, fs.ReadFileFS, fs.StatFS and fs.ReadLinkFS and is safe
// for concurrent use. Symbolic links are followed as in a checkout, but only inside the
// tree: a link that is absolute or climbs above the root is an error, since its target
// is not part of the revision. Submodules show as empty directories. Modes are 0644,
// 0755 (executables and directories) or symlinks, and every ModTime is the commit's
// committer time. Files are read whole into memory when opened.
func (r *Repository) TreeFS(rev string) (fs.FS, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.resolveCommit(rev)
	if err != nil {
		return nil, "", err
	}
	return newTreeFS(&r.mu, r.repo.Storer, c.TreeHash, c.Committer.When), c.Hash.String(), nil
}

// IsAncestor reports whether the commit ancestor resolves to is rev's commit or one of
// its ancestors.
func (r *Repository) IsAncestor(ancestor, rev string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, err := r.resolveCommit(ancestor)
	if err != nil {
		return false, err
	}
	c, err := r.resolveCommit(rev)
	if err != nil {
		return false, err
	}
	return a.IsAncestor(c)
}

// revSuffix finds where the ref or SHA part of a revision ends: HEAD~1, main^2,
// v1^{commit}, main@{...}, HEAD:path.
var revSuffix = regexp.MustCompile(`[~^:]|@\{`)

// ancestry matches the suffixes that walk parents (~, ~3, ^, ^2) or peel to the commit
// (^{}, ^{commit}). go-git's ResolveRevision parses more (@{upstream}, ^{tree}, :path)
// but silently ignores it, which would deploy another revision than the one asked for.
var ancestry = regexp.MustCompile(`^([~^][0-9]*|\^\{(commit)?\})+$`)

// resolveCommit resolves rev to a commit; r.mu must be held.
func (r *Repository) resolveCommit(rev string) (*object.Commit, error) {
	if strings.TrimSpace(rev) == "" {
		return nil, fmt.Errorf("resolve revision: empty revision: give a branch, tag or commit SHA")
	}
	base, suffix := rev, ""
	if loc := revSuffix.FindStringIndex(rev); loc != nil {
		base, suffix = rev[:loc[0]], rev[loc[0]:]
	}
	if suffix != "" && !ancestry.MatchString(suffix) {
		return nil, fmt.Errorf("resolve revision %q: %q is not supported: use a branch, tag or commit SHA, optionally followed by ~N or ^N", rev, suffix)
	}
	// go-git tries a name as a SHA prefix before trying refs, so a branch called "add" or
	// "cafe" would lose to any commit whose SHA starts that way. Git prefers the ref
	// (unless given all 40 digits), and only takes four digits or more as a short SHA;
	// do the same.
	resolved := rev
	hex := isHex(base)
	fullSHA := hex && len(base) == 2*len(plumbing.ZeroHash)
	switch ref := r.expandRef(base); {
	case ref != "" && !fullSHA:
		resolved = ref.String() + suffix
	case hex && len(base) < 4:
		return nil, r.unknownRevision(rev)
	case hex:
		// go-git matches the odd last digit of a prefix against lower-case hex only.
		resolved = strings.ToLower(base) + suffix
	}
	h, err := r.repo.ResolveRevision(plumbing.Revision(resolved))
	if err != nil {
		if base != rev && base != "" {
			if bh, berr := r.repo.ResolveRevision(plumbing.Revision(r.expandedOr(base))); berr == nil {
				return nil, fmt.Errorf("resolve revision %q: %w: %s is %s, which has no ancestor %s (history too short)",
					rev, ErrUnknownRevision, base, bh.String()[:7], suffix)
			}
		}
		return nil, r.unknownRevision(rev)
	}
	c, err := r.repo.CommitObject(*h)
	if err != nil {
		return nil, fmt.Errorf("resolve revision %q: read commit %s: %w", rev, h, err)
	}
	return c, nil
}

// expandRef finds the reference a short name means, with Git's precedence (refs/<name>,
// tags, branches, remote branches, remote HEAD), or "" when none does.
func (r *Repository) expandRef(name string) plumbing.ReferenceName {
	if name == "" {
		return ""
	}
	for _, rule := range plumbing.RefRevParseRules {
		full := plumbing.ReferenceName(fmt.Sprintf(rule, name))
		if _, err := storer.ResolveReference(r.repo.Storer, full); err == nil {
			return full
		}
	}
	return ""
}

func (r *Repository) expandedOr(name string) string {
	if ref := r.expandRef(name); ref != "" {
		return ref.String()
	}
	return name
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// unknownRevision builds the error for a revision that names nothing, listing what
// exists so that a typo is obvious.
func (r *Repository) unknownRevision(rev string) error {
	if _, err := storer.ResolveReference(r.repo.Storer, plumbing.HEAD); errors.Is(err, plumbing.ErrReferenceNotFound) {
		if branches := r.refNames(func(n plumbing.ReferenceName) bool { return n.IsBranch() }); len(branches) == 0 {
			return fmt.Errorf("resolve revision %q: %w: the repository has no commits", rev, ErrUnknownRevision)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%q", rev)
	list := func(kind string, names []string) {
		if len(names) == 0 {
			return
		}
		const limit = 10
		fmt.Fprintf(&b, "; %s: %s", kind, strings.Join(names[:min(len(names), limit)], ", "))
		if len(names) > limit {
			fmt.Fprintf(&b, ", ... (%d more)", len(names)-limit)
		}
	}
	list("branches", r.refNames(func(n plumbing.ReferenceName) bool { return n.IsBranch() }))
	list("tags", r.refNames(func(n plumbing.ReferenceName) bool { return n.IsTag() }))
	return fmt.Errorf("resolve revision: %w %s", ErrUnknownRevision, b.String())
}

// refNames lists the short names of the references keep accepts, sorted.
func (r *Repository) refNames(keep func(plumbing.ReferenceName) bool) []string {
	refs, err := r.repo.References()
	if err != nil {
		return nil
	}
	var names []string
	_ = refs.ForEach(func(ref *plumbing.Reference) error {
		if keep(ref.Name()) {
			names = append(names, ref.Name().Short())
		}
		return nil
	})
	sort.Strings(names)
	return names
}
