package spec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// File is a named chunk of bytes handed to Load: a Compose file or an env file.
type File struct {
	Name    string
	Content []byte
}

// LoadOptions is everything Load may look at. Load never reads the host environment or
// the disk by itself: the caller decides what the stack sees.
type LoadOptions struct {
	// Stack names the stack; it prefixes every service, network, secret... in the cluster.
	Stack string
	// Files are the Compose files, merged in order (later files override earlier ones).
	Files []File
	// WorkingDir is the slash-separated directory, inside FS, that relative paths in the
	// files (secret and config files, env_file) are resolved against. "" means FS's root.
	WorkingDir string
	// BindDir is the absolute host folder that relative bind sources (./data) resolve
	// against, as `docker stack deploy -c` resolves them against the Compose file's
	// folder; HomeDir is what a bind source's leading ~ stands for. Empty (a stack read
	// from Git, whose folder is not on the nodes): such sources are problems.
	BindDir, HomeDir string
	// Environment is used for ${VAR} interpolation and for environment entries without a
	// value. It wins over EnvFiles.
	Environment map[string]string
	// EnvFiles are dotenv files for interpolation, applied in order (later wins).
	EnvFiles []File
	// FS serves the files a stack refers to (secret and config files, env_file).
	// Absolute paths are looked up relative to FS's root. Nil: such references are errors.
	FS fs.FS
	// OpenFile, when set, turns the bytes of each secret and config file (name is its
	// path inside FS) into what the object holds: the applier decrypts SOPS files with
	// it. An error with a Fix() string method gives the problem's fix.
	OpenFile func(name string, data []byte) ([]byte, error)
	// Cache, when set, keeps the Compose loader's work per service across loads, so a
	// revision that changes a few services of a large stack only pays for those.
	Cache *Cache
}

// ValidStackName reports whether name can name a stack: it prefixes every service,
// network, secret and config of the stack in the cluster.
func ValidStackName(name string) bool { return stackNames.check("stack", name) == nil }

// StackNameFromFolder names a stack after the folder holding its files, as Compose names
// a project after its directory: lower case, only [a-z0-9_-], starting with a letter or
// a digit. The result is empty when nothing of the name is left.
func StackNameFromFolder(folder string) string { return loader.NormalizeProjectName(folder) }

// Load parses, merges, interpolates and validates a stack's Compose files and returns
// the stack in canonical form with every warning. A validation failure is a
// *ValidationError listing every problem found.
func Load(ctx context.Context, opts LoadOptions) (*Stack, []Warning, error) {
	if err := CheckStackName("stack", opts.Stack); err != nil {
		return nil, nil, err
	}
	if len(opts.Files) == 0 {
		return nil, nil, fmt.Errorf("load stack %q: no compose file given", opts.Stack)
	}
	env, err := interpolationEnv(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("load stack %q: %w", opts.Stack, err)
	}
	ps := &problems{stack: opts.Stack}
	out := runLoader(ctx, opts, env)
	ps.errors = append(ps.errors, out.prescan.errors...)
	ps.warnings = append(ps.warnings, out.prescan.warnings...)
	var projects []*types.Project
	unset := map[string]bool{}
	dropped := map[fieldKey]bool{}
	for _, r := range out.units {
		ps.errors = append(ps.errors, r.errors...)
		for _, k := range r.dropped {
			dropped[k] = true
		}
		ps.warnings = append(ps.warnings, r.warnings...)
		for _, name := range r.unset {
			unset[name] = true
		}
		if r.project != nil {
			projects = append(projects, r.project)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(unset)) {
		ps.warnings = append(ps.warnings, Warning{File: filesMentioning(opts.Files, name), Stack: opts.Stack,
			Message: fmt.Sprintf("variable %s is not set: it was replaced by an empty string", name),
			Fix:     fmt.Sprintf("set %s in the environment or an env file, or give a default with ${%s:-value}", name, name)})
	}
	if len(projects) == 0 {
		warnings, err := located(ps, opts, out)
		return nil, warnings, err
	}
	// Services whose unit failed are missing here, and their errors are already in ps:
	// the others are still converted and validated so that one run reports everything.
	fromLoader := len(ps.errors)
	stack := convertProjects(projects, opts, env, ps)
	validateStack(stack, ps)
	// A manager holds replicas to its own limit instead, which may be raised. The
	// services are sorted, for the order of the problems, only when one has any.
	for _, s := range stack.Services {
		if ReplicasProblem("", s, DefaultMaxReplicas) != nil {
			for _, name := range slices.Sorted(maps.Keys(stack.Services)) {
				validateReplicas(stack.Services[name], ps)
			}
			break
		}
	}
	// A value the loader refused was dropped: what is said about its absence (image is
	// required) would only repeat the loader's error.
	later := slices.DeleteFunc(ps.errors[fromLoader:], func(p Problem) bool { return dropped[fieldKey{p.Service, p.Field}] })
	ps.errors = ps.errors[:fromLoader+len(later)]
	warnings, err := located(ps, opts, out)
	if err != nil {
		return nil, warnings, err
	}
	canonicalize(stack)
	return stack, warnings, nil
}

// located drops repeated findings and names the file of each, then returns the
// warnings and the errors as one *ValidationError (or nil).
func located(ps *problems, opts LoadOptions, out *loaderOutput) ([]Warning, error) {
	ps.dedupe()
	names := make([]string, len(opts.Files))
	for i, f := range opts.Files {
		names[i] = f.Name
	}
	locateFiles(ps.errors, names, out.raws)
	locateFiles(ps.warnings, names, out.raws)
	return ps.warnings, ps.err()
}

// interpolationEnv merges the env files (in order) under the explicit environment.
func interpolationEnv(opts LoadOptions) (map[string]string, error) {
	env := map[string]string{}
	for _, f := range opts.EnvFiles {
		vars, err := dotenv.UnmarshalBytesWithLookup(f.Content, func(k string) (string, bool) {
			if v, ok := opts.Environment[k]; ok {
				return v, true
			}
			v, ok := env[k]
			return v, ok
		})
		if err != nil {
			return nil, envFileError(f.Name, err)
		}
		maps.Copy(env, vars)
	}
	maps.Copy(env, opts.Environment)
	return env, nil
}

var dotenvLine = regexp.MustCompile(`line \d+`)

// envFileError reports a dotenv parse failure by line only: the parser's own message
// quotes the offending value, and env files hold passwords.
func envFileError(name string, err error) error {
	where := "it"
	if l := dotenvLine.FindString(err.Error()); l != "" {
		where = l
	}
	return fmt.Errorf("env file %s is not valid: check the quoting of %s", name, where)
}

func cleanDir(dir string) string {
	dir = path.Clean("/" + dir)
	return strings.TrimPrefix(dir, "/")
}

// fsPath turns a path written in a stack file into a path inside FS.
func fsPath(workingDir, p string) string {
	if path.IsAbs(p) {
		return strings.TrimPrefix(path.Clean(p), "/")
	}
	joined := path.Join(cleanDir(workingDir), p)
	if joined == "" {
		return "."
	}
	return joined
}

// readRef reads a file a stack refers to (secret, config, env_file) through FS.
func readRef(opts LoadOptions, p string) ([]byte, error) {
	if opts.FS == nil {
		return nil, errors.New("no file system to read it from")
	}
	name := fsPath(opts.WorkingDir, p)
	if strings.HasPrefix(name, "../") || name == ".." {
		return nil, fmt.Errorf("%s is outside the stack's file system", p)
	}
	data, err := fs.ReadFile(opts.FS, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("file %s does not exist", p)
	}
	return data, err
}

// resolveServiceEnv computes a service's environment as Compose does: env_file entries in
// order, then the environment section; entries without a value come from env and are
// dropped when env does not have them either.
func resolveServiceEnv(svc *types.ServiceConfig, opts LoadOptions, env map[string]string, ps *problems) map[string]string {
	out := map[string]string{}
	for i, ef := range svc.EnvFiles {
		data, err := readRef(opts, ef.Path)
		if err != nil {
			if ef.Required {
				ps.errorf(svc.Name, fmt.Sprintf("env_file[%d]", i), "fix the path (relative to the stack's folder) or mark it `required: false`", "cannot read %s: %v", ef.Path, err)
			}
			continue
		}
		format := ef.Format
		vars := map[string]string{}
		if err := dotenv.ParseWithFormat(bytes.NewReader(data), ef.Path, vars, func(k string) (string, bool) {
			if v, ok := env[k]; ok {
				return v, true
			}
			v, ok := out[k]
			return v, ok
		}, format); err != nil {
			ps.errorf(svc.Name, fmt.Sprintf("env_file[%d]", i), "", "%v", envFileError(ef.Path, err))
			continue
		}
		maps.Copy(out, vars)
	}
	var missing []string
	for k, v := range svc.Environment {
		if v != nil {
			out[k] = *v
			continue
		}
		if ev, ok := env[k]; ok {
			out[k] = ev
		} else if _, fromFile := out[k]; !fromFile {
			missing = append(missing, k)
		}
	}
	// Sorted, for the order of the warnings; only these, as the others need no order.
	slices.Sort(missing)
	for _, k := range missing {
		ps.warnf(svc.Name, "environment."+k, "set it in the environment berth runs with, or give it a value in the file",
			"%s has no value and is not set in the environment: it is left out", k)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
