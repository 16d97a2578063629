package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/applier"
	"github.com/berthd/berth/spec"
)

// composeFlags are the flags that name a stack by its Compose files, as for
// `docker stack deploy -c`.
type composeFlags struct {
	files    []string
	envFiles []string
	stack    string
}

func (f *composeFlags) register(cmd *cobra.Command, usage string) {
	cmd.Flags().StringArrayVarP(&f.files, "compose-file", "c", nil, usage)
	cmd.Flags().StringArrayVar(&f.envFiles, "env-file", nil, "Read interpolation variables from a dotenv file (repeatable, later wins; the process environment wins over all files)")
	cmd.Flags().StringVar(&f.stack, "stack", "", "Stack name (default: the first compose file's folder name)")
}

// repoFlags are the flags that name stacks by a Git repository, a revision and a path.
type repoFlags struct {
	repo string
	path string
}

func (f *repoFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.repo, "repo", "", "Git repository holding the stacks: a local path or a URL")
	cmd.Flags().StringVar(&f.path, "path", "", "Folder inside the repository holding berth.yaml or one folder per stack (default: the root)")
}

// stdinName is the file name that makes -c read standard input, as with docker.
const stdinName = "-"

// loadCompose loads one stack from Compose files on the local disk. The stack sees what
// `docker stack deploy` would show it: the process environment, a .env beside the first
// file, the given env files, and files and bind sources referenced relative to the
// first file's folder.
func loadCompose(ctx context.Context, stdin io.Reader, files, envFiles []string, stack string) (*spec.Stack, []spec.Warning, error) {
	if len(files) == 0 {
		return nil, nil, errors.New("no compose file given: use -c FILE")
	}
	dir, err := composeDir(files[0])
	if err != nil {
		return nil, nil, err
	}
	if stack == "" {
		stack = stackNameFromDir(dir)
		if stack == "" {
			return nil, nil, fmt.Errorf("cannot derive a stack name from folder %q: use --stack NAME", dir)
		}
	}

	opts := spec.LoadOptions{
		Stack:       stack,
		Environment: processEnvironment(),
		FS:          os.DirFS("/"),
		// os.DirFS("/") wants paths without the leading slash.
		WorkingDir: strings.TrimPrefix(filepath.ToSlash(dir), "/"),
		BindDir:    filepath.ToSlash(dir),
		OpenFile:   refuseSOPS,
	}
	// As the Docker CLI does, ~ in a bind source is the home of who runs the
	// command; without one such a source is refused as relative.
	if home, err := os.UserHomeDir(); err == nil {
		opts.HomeDir = filepath.ToSlash(home)
	}
	for _, name := range files {
		content, err := readInput(stdin, name)
		if err != nil {
			return nil, nil, err
		}
		opts.Files = append(opts.Files, spec.File{Name: name, Content: content})
	}

	// A missing .env is normal; an unreadable one is not.
	dotenv := filepath.Join(dir, ".env")
	if content, err := os.ReadFile(dotenv); err == nil {
		opts.EnvFiles = append(opts.EnvFiles, spec.File{Name: dotenv, Content: content})
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("reading env file: %w", err)
	}
	for _, name := range envFiles {
		content, err := os.ReadFile(name)
		if err != nil {
			return nil, nil, fmt.Errorf("reading env file: %w", err)
		}
		opts.EnvFiles = append(opts.EnvFiles, spec.File{Name: name, Content: content})
	}

	return spec.Load(ctx, opts)
}

// composeDir is the absolute folder that a stack's relative paths resolve against.
func composeDir(first string) (string, error) {
	if first == stdinName {
		dir, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("finding the working directory for a compose file on standard input: %w", err)
		}
		return dir, nil
	}
	abs, err := filepath.Abs(first)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", first, err)
	}
	return filepath.Dir(abs), nil
}

func readInput(stdin io.Reader, name string) ([]byte, error) {
	if name == stdinName {
		content, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading compose file from standard input: %w", err)
		}
		return content, nil
	}
	content, err := os.ReadFile(name)
	if err != nil {
		// os.PathError already names the file.
		return nil, fmt.Errorf("reading compose file: %w", err)
	}
	return content, nil
}

// stackNameFromDir derives a stack name from a folder the way Compose derives a
// project name: lower-case, only [a-z0-9_-], starting with a letter or digit.
func stackNameFromDir(dir string) string { return spec.StackNameFromFolder(filepath.Base(dir)) }

// processEnvironment is the environment berth itself runs with, as interpolation
// variables.
func processEnvironment() map[string]string {
	env := make(map[string]string)
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			env[k] = v
		}
	}
	return env
}

// repoPath turns the --path flag into the slash-separated folder that fs.FS wants:
// "." for the root, no leading "/" or "./".
func repoPath(p string) string {
	p = strings.Trim(filepath.ToSlash(p), "/")
	if p == "" {
		return "."
	}
	return path.Clean(p)
}

// revision is the stacks of one revision of a repository.
type revision struct {
	rev    string // as the user wrote it
	commit string
	*applier.LoadedStacks
}

func (r *revision) String() string {
	if strings.HasPrefix(r.commit, r.rev) {
		// Given as a SHA: saying it twice would add nothing.
		return shortCommit(r.commit)
	}
	return fmt.Sprintf("%s (%s)", r.rev, shortCommit(r.commit))
}

// loadRevision loads every stack found under dir at rev. Revisions loaded with the same
// cache share the Compose loader's work for what they have in common.
func loadRevision(ctx context.Context, repo *applier.Repository, rev, dir string, cache *spec.Cache) (*revision, error) {
	fsys, commit, err := repo.TreeFS(rev)
	if err != nil {
		return nil, fmt.Errorf("revision %s: %w", rev, err)
	}
	loaded, err := applier.LoadStacks(ctx, fsys, dir, processEnvironment(), applier.WithCache(cache))
	if err != nil {
		return nil, fmt.Errorf("revision %s (%s): %w", rev, shortCommit(commit), err)
	}
	return &revision{rev: rev, commit: commit, LoadedStacks: loaded}, nil
}

func shortCommit(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
