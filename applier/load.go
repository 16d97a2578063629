package applier

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/berthd/berth/spec"
)

// LoadedStacks is every stack of one revision (or directory), loaded and validated.
type LoadedStacks struct {
	Stacks   []*spec.Stack // sorted by name
	Warnings []spec.Warning
	// checked are Stacks as spec.LoadChecked returned them: the proof a manager in
	// this process takes instead of checking them again.
	checked []spec.Checked
	// DependsOn is berth.yaml's depends_on, by stack name.
	DependsOn map[string][]string
}

// Checked are Stacks as spec.LoadChecked returned them, for the cluster to plan
// without checking them again.
func (l *LoadedStacks) Checked() []spec.Checked { return l.checked }

// LoadStacks discovers and loads every stack at dir in fsys with spec.Load.
//
// A revision is applied whole or not at all, so the problems of all stacks are collected:
// when any stack is invalid the error is one *spec.ValidationError holding every stack's
// problems. Failures that are not about a stack's content (an unreadable or wrong
// berth.yaml, no stacks at dir, two stacks of one name, a file that cannot be read) are
// plain errors naming the path and the fix; if both kinds occur, they are joined and
// errors.As still finds the *spec.ValidationError.
func LoadStacks(ctx context.Context, fsys fs.FS, dir string, env map[string]string, opts ...LoadOption) (*LoadedStacks, error) {
	var cfg loadConfig
	for _, o := range opts {
		o(&cfg)
	}
	sources, err := DiscoverStacks(fsys, dir)
	if err != nil {
		return nil, err
	}
	if len(sources) == 0 {
		d, _ := cleanDir(dir)
		return nil, fmt.Errorf("no stacks found at %s: add a folder holding compose.yaml, or a %s listing the stacks (or fix the source's path)",
			dirLabel(d), layoutFileName)
	}

	results := loadAll(ctx, fsys, sources, env, &cfg)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load stacks: %w", err)
	}

	loaded := &LoadedStacks{Stacks: make([]*spec.Stack, 0, len(sources)), checked: make([]spec.Checked, 0, len(sources))}
	var problems []spec.Problem
	var errs []error
	// Results are in source order, which is by name: the outcome does not depend on
	// which worker finished first.
	for i, r := range results {
		name := sources[i].Name
		for _, w := range r.warnings {
			if w.Stack == "" {
				w.Stack = name
			}
			loaded.Warnings = append(loaded.Warnings, w)
		}
		var verr *spec.ValidationError
		switch {
		case errors.As(r.err, &verr):
			for _, p := range verr.Problems {
				if p.Stack == "" {
					p.Stack = name
				}
				problems = append(problems, p)
			}
		case r.err != nil:
			errs = append(errs, r.err)
		default:
			loaded.Stacks = append(loaded.Stacks, r.stack.Stack())
			loaded.checked = append(loaded.checked, r.stack)
			if deps := sources[i].DependsOn; len(deps) > 0 {
				if loaded.DependsOn == nil {
					loaded.DependsOn = map[string][]string{}
				}
				loaded.DependsOn[name] = deps
			}
		}
	}
	if len(problems) > 0 {
		errs = append(errs, &spec.ValidationError{Problems: problems})
	}
	switch len(errs) {
	case 0:
		return loaded, nil
	case 1:
		// Unjoined, so that a lone *spec.ValidationError is returned as itself.
		return nil, errs[0]
	default:
		return nil, errors.Join(errs...)
	}
}

// LoadOption configures LoadStacks.
type LoadOption func(*loadConfig)

type loadConfig struct {
	cache    *spec.Cache
	openFile func(name string, data []byte) ([]byte, error)
}

// WithCache shares the Compose loader's work between calls: loading the next revision of
// a source then only pays for the stacks and services that changed. The applier keeps one
// cache per source.
func WithCache(c *spec.Cache) LoadOption {
	return func(cfg *loadConfig) { cfg.cache = c }
}

type loadResult struct {
	stack    spec.Checked
	warnings []spec.Warning
	err      error
}

// loadAll loads the stacks on a bounded pool of workers: stacks are independent, and a
// revision with many of them should not take one core's time per stack. results[i] is
// sources[i]'s.
func loadAll(ctx context.Context, fsys fs.FS, sources []StackSource, env map[string]string, cfg *loadConfig) []loadResult {
	results := make([]loadResult, len(sources))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range sources {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			results[i] = loadOne(ctx, fsys, sources[i], env, cfg)
			return nil
		})
	}
	_ = g.Wait() // workers report through results
	return results
}

func loadOne(ctx context.Context, fsys fs.FS, src StackSource, env map[string]string, cfg *loadConfig) loadResult {
	if err := ctx.Err(); err != nil {
		return loadResult{err: err}
	}
	files, err := readFiles(fsys, src.Files)
	if err != nil {
		return loadResult{err: fmt.Errorf("stack %q: %w", src.Name, err)}
	}
	envFiles, err := readFiles(fsys, src.EnvFiles)
	if err != nil {
		return loadResult{err: fmt.Errorf("stack %q: %w", src.Name, err)}
	}
	workingDir := src.Dir
	if workingDir == "." {
		workingDir = "" // spec's name for the root
	}
	st, warnings, err := spec.LoadChecked(ctx, spec.LoadOptions{
		Stack:      src.Name,
		Files:      files,
		WorkingDir: workingDir,
		// Each load gets its own copy: the stacks load concurrently and the map is the
		// caller's.
		Environment: maps.Clone(env),
		EnvFiles:    envFiles,
		FS:          fsys,
		Cache:       cfg.cache,
		OpenFile:    cfg.openFile,
	})
	if err != nil {
		var verr *spec.ValidationError
		if errors.As(err, &verr) {
			return loadResult{warnings: warnings, err: err}
		}
		return loadResult{warnings: warnings, err: fmt.Errorf("load stack %q: %w", src.Name, err)}
	}
	return loadResult{stack: st, warnings: warnings}
}

func readFiles(fsys fs.FS, names []string) ([]spec.File, error) {
	files := make([]spec.File, 0, len(names))
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		files = append(files, spec.File{Name: name, Content: data})
	}
	return files, nil
}
