package applier

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/berthd/berth/spec"
)

// layoutFileName lists a source's stacks; see the package documentation.
const layoutFileName = "berth.yaml"

// composeFileNames are the names discovery takes for a stack's Compose file: Compose's
// own, in its order of preference, then the `docker stack deploy` habit.
var composeFileNames = []string{"compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml", "stack.yml"}

// envFileName is read for interpolation from a stack's directory, as Compose does.
const envFileName = ".env"

// StackSource says where one stack's files are, as slash paths inside the FS.
type StackSource struct {
	Name string
	// Dir is the working dir of the stack: relative paths in its files resolve against
	// it. "." is the FS's root.
	Dir string
	// Files are the Compose files, in merge order.
	Files []string
	// EnvFiles are dotenv files for interpolation.
	EnvFiles []string
	// DependsOn names the stacks whose services must all run before this one's place
	// tasks (model.Stack.DependsOn; the leader holds them meanwhile).
	DependsOn []string
}

// DiscoverStacks applies the repository layout at dir inside fsys: if dir/berth.yaml
// exists it lists the stacks; otherwise every folder under dir (recursively, dir itself
// too) holding a Compose file is one stack named after the folder. The result is sorted
// by name. See the package documentation for the rules.
func DiscoverStacks(fsys fs.FS, dir string) ([]StackSource, error) {
	dir, err := cleanDir(dir)
	if err != nil {
		return nil, err
	}
	info, err := fs.Stat(fsys, dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("source path %q: no such directory in the tree (check the source's path)", dir)
		}
		return nil, fmt.Errorf("source path %q: %w", dir, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("source path %q: not a directory (the path names the folder holding the stacks)", dir)
	}

	layoutPath := path.Join(dir, layoutFileName)
	data, err := fs.ReadFile(fsys, layoutPath)
	switch {
	case err == nil:
		return parseLayout(fsys, dir, layoutPath, data)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read %s: %w", layoutPath, err)
	}
	// A berth.yml that is silently ignored would be worse than a refusal.
	if isFile(fsys, path.Join(dir, "berth.yml")) {
		return nil, fmt.Errorf("%s: berth reads %s: rename the file", path.Join(dir, "berth.yml"), layoutFileName)
	}
	return discoverFolders(fsys, dir)
}

// cleanDir turns a source path into an fs.FS directory name; "" and "/" are the root.
func cleanDir(dir string) (string, error) {
	d := path.Clean("/" + strings.TrimSpace(dir))[1:]
	if d == "" {
		d = "."
	}
	if !fs.ValidPath(d) || strings.HasPrefix(path.Clean(dir), "..") {
		return "", fmt.Errorf("source path %q: not a path inside the repository", dir)
	}
	return d, nil
}

// isFile reports whether name is a regular file, following symlinks.
func isFile(fsys fs.FS, name string) bool {
	info, err := fs.Stat(fsys, name)
	return err == nil && info.Mode().IsRegular()
}

// findComposeFile returns the one Compose file in dir (its full path), "" when there is
// none, and an error when there are several: Compose would pick one with a warning,
// berth refuses rather than deploy a file its author did not mean.
func findComposeFile(fsys fs.FS, dir string, entries []fs.DirEntry) (string, error) {
	var found []string
	for _, name := range composeFileNames {
		i := slices.IndexFunc(entries, func(e fs.DirEntry) bool { return e.Name() == name })
		if i < 0 || entries[i].IsDir() {
			continue
		}
		if !entries[i].Type().IsRegular() && !isFile(fsys, path.Join(dir, name)) {
			continue
		}
		found = append(found, name)
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return path.Join(dir, found[0]), nil
	default:
		return "", fmt.Errorf("folder %s holds %s and %s: keep one, or list the stack's files in %s",
			dir, strings.Join(found[:len(found)-1], ", "), found[len(found)-1], layoutFileName)
	}
}

// discoverFolders finds the stacks of a source without berth.yaml.
func discoverFolders(fsys fs.FS, root string) ([]StackSource, error) {
	var stacks []StackSource
	var errs []error
	byName := map[string]string{} // stack name -> its folder
	var walk func(dir string) error
	walk = func(dir string) error {
		entries, err := fs.ReadDir(fsys, dir)
		if err != nil {
			return fmt.Errorf("read directory %s: %w", dir, err)
		}
		file, err := findComposeFile(fsys, dir, entries)
		if err != nil {
			errs = append(errs, err)
		} else if file != "" {
			if s, err := folderStack(fsys, root, dir, file); err != nil {
				errs = append(errs, err)
			} else if other, dup := byName[s.Name]; dup {
				errs = append(errs, fmt.Errorf("folders %s and %s would both be stack %q: rename one, or name the stacks in %s",
					other, dir, s.Name, layoutFileName))
			} else {
				byName[s.Name] = dir
				stacks = append(stacks, s)
			}
		}
		for _, e := range entries {
			// Hidden folders hold tooling (.git, .github, .vscode), not stacks.
			if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if err := walk(path.Join(dir, e.Name())); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return nil, err
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sortStacks(stacks)
	return stacks, nil
}

func folderStack(fsys fs.FS, root, dir, file string) (StackSource, error) {
	folder := path.Base(dir)
	if dir == "." {
		folder = "default"
	}
	name := spec.StackNameFromFolder(folder)
	if name == "" {
		return StackSource{}, fmt.Errorf("folder %s: no stack name can be made of %q: rename the folder, or name the stack in %s",
			dir, folder, path.Join(root, layoutFileName))
	}
	s := StackSource{Name: name, Dir: dir, Files: []string{file}}
	if env := path.Join(dir, envFileName); isFile(fsys, env) {
		s.EnvFiles = []string{env}
	}
	return s, nil
}

func sortStacks(stacks []StackSource) {
	sort.Slice(stacks, func(i, j int) bool { return stacks[i].Name < stacks[j].Name })
}

// layoutFile is berth.yaml.
type layoutFile struct {
	Stacks []layoutStack `yaml:"stacks"`
}

type layoutStack struct {
	Name      string     `yaml:"name"`
	Files     stringList `yaml:"files"`
	Dir       string     `yaml:"dir"`
	EnvFiles  stringList `yaml:"env_files"`
	DependsOn stringList `yaml:"depends_on"`
}

// layoutFields names the keys of each berth.yaml level, for unknown-field errors.
var layoutFields = map[string]string{
	"layoutFile":  "stacks",
	"layoutStack": "name, files, dir, env_files, depends_on",
}

// stringList is a list of strings that may be written as one string, as Compose allows
// for env_file: `files: web/compose.yml` means `files: [web/compose.yml]`. An explicit
// empty list stays non-nil, so that `env_files: []` can mean "none".
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var s string
		if err := n.Decode(&s); err != nil {
			return err
		}
		*l = stringList{s}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return err
	}
	if list == nil {
		list = []string{}
	}
	*l = list
	return nil
}

// layoutTypeNames says what the Go types in yaml.v3's messages stand for.
var layoutTypeNames = strings.NewReplacer(
	"applier.layoutFile", "a mapping with `stacks:`",
	"applier.layoutStack", "a stack (a mapping with name, files...)",
	"[]applier.layoutStack", "a list of stacks",
	"[]string", "a list of strings",
	"!!seq", "a list",
	"!!map", "a mapping",
	"!!str", "a string",
)

// unknownField matches yaml.v3's strict-decoding message, rewritten for humans.
var unknownField = regexp.MustCompile(`field (\S+) not found in type \S*\.(\w+)`)

func decodeLayout(layoutPath string, data []byte) (*layoutFile, []int, error) {
	var lf layoutFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&lf); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("%s is empty: list the stacks under `stacks:`, or delete it to discover stack folders", layoutPath)
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msgs := make([]string, len(te.Errors))
			for i, m := range te.Errors {
				m = unknownField.ReplaceAllStringFunc(m, func(s string) string {
					sub := unknownField.FindStringSubmatch(s)
					return fmt.Sprintf("unknown field %q (known: %s)", sub[1], layoutFields[sub[2]])
				})
				msgs[i] = layoutTypeNames.Replace(m)
			}
			return nil, nil, fmt.Errorf("%s: %s", layoutPath, strings.Join(msgs, "; "))
		}
		return nil, nil, fmt.Errorf("%s: %w", layoutPath, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%s: holds more than one YAML document: keep one", layoutPath)
	}

	// The typed decode keeps no positions; a node decode of the same bytes gives every
	// stack's line for the messages below.
	lines := make([]int, len(lf.Stacks))
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err == nil && len(doc.Content) == 1 {
		m := doc.Content[0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == "stacks" && m.Content[i+1].Kind == yaml.SequenceNode {
				for j, item := range m.Content[i+1].Content {
					if j < len(lines) {
						lines[j] = item.Line
					}
				}
			}
		}
	}
	return &lf, lines, nil
}

// parseLayout reads berth.yaml at layoutPath, whose directory is base, and checks it
// against the tree. Every problem is reported, not just the first.
func parseLayout(fsys fs.FS, base, layoutPath string, data []byte) ([]StackSource, error) {
	lf, lines, err := decodeLayout(layoutPath, data)
	if err != nil {
		return nil, err
	}
	if len(lf.Stacks) == 0 {
		return nil, fmt.Errorf("%s lists no stacks: add them under `stacks:`, or delete it to discover stack folders", layoutPath)
	}
	c := &layoutCheck{fsys: fsys, base: base, layoutPath: layoutPath, lines: lines, first: map[string]int{}}
	stacks := make([]StackSource, 0, len(lf.Stacks))
	for i, ls := range lf.Stacks {
		if !c.checkName(i, ls.Name) {
			continue
		}
		s, err := c.stack(i, ls)
		if err != nil {
			return nil, err
		}
		stacks = append(stacks, s)
	}
	c.checkDependencies(stacks)
	if err := c.err(); err != nil {
		return nil, err
	}
	sortStacks(stacks)
	return stacks, nil
}

// layoutCheck collects the problems of one berth.yaml, each at the line of its stack.
type layoutCheck struct {
	fsys       fs.FS
	base       string
	layoutPath string
	lines      []int          // stack index -> line in berth.yaml
	first      map[string]int // name -> index of its first entry
	errs       []layoutError
}

type layoutError struct {
	line int
	err  error
}

func (c *layoutCheck) errorf(i int, format string, args ...any) {
	c.errs = append(c.errs, layoutError{c.lines[i], fmt.Errorf("%s:%d: %s", c.layoutPath, c.lines[i], fmt.Sprintf(format, args...))})
}

// err joins the problems in file order, as a reader fixes them; nil without any.
func (c *layoutCheck) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(c.errs, func(a, b layoutError) int { return a.line - b.line })
	joined := make([]error, len(c.errs))
	for i, e := range c.errs {
		joined[i] = e.err
	}
	return errors.Join(joined...)
}

// resolve turns a berth.yaml path into an FS path, refusing what leaves the tree.
func (c *layoutCheck) resolve(p string) (string, bool) {
	full := path.Join(c.base, p)
	return full, p != "" && !path.IsAbs(p) && fs.ValidPath(full)
}

// checkName reports a missing, invalid or repeated name; false skips the entry.
func (c *layoutCheck) checkName(i int, name string) bool {
	label := fmt.Sprintf("stack %q", name)
	switch {
	case name == "":
		c.errorf(i, "stacks[%d]: name is required", i)
		return false
	case !spec.ValidStackName(name):
		fix := ""
		if n := spec.StackNameFromFolder(name); n != "" {
			fix = fmt.Sprintf(", e.g. %q", n)
		}
		c.errorf(i, "%s: invalid name: use lowercase letters, digits, '-' and '_', starting with a letter or a digit%s", label, fix)
		return false
	}
	if j, dup := c.first[name]; dup {
		c.errorf(i, "%s is listed twice (first at line %d): give each stack its own name", label, c.lines[j])
		return false
	}
	c.first[name] = i
	return true
}

// stack resolves entry i's files, dir, env files and dependencies. The error is one
// that stops the whole check (an unreadable directory), not a problem of the entry.
func (c *layoutCheck) stack(i int, ls layoutStack) (StackSource, error) {
	label := fmt.Sprintf("stack %q", ls.Name)
	s := StackSource{Name: ls.Name}
	filesOK := c.files(i, label, ls, &s)
	dirOK := c.dir(i, label, ls, &s)
	if len(ls.Files) == 0 && filesOK && dirOK {
		if err := c.discoverFile(i, label, &s); err != nil {
			return StackSource{}, err
		}
	}
	c.envFiles(i, label, ls, &s)
	for _, d := range ls.DependsOn {
		if !slices.Contains(s.DependsOn, d) {
			s.DependsOn = append(s.DependsOn, d)
		}
	}
	return s, nil
}

// files resolves the entry's Compose files into s; false when one is bad.
func (c *layoutCheck) files(i int, label string, ls layoutStack, s *StackSource) bool {
	ok := true
	for _, f := range ls.Files {
		full, inside := c.resolve(f)
		switch {
		case !inside:
			c.errorf(i, "%s: file %q is not a path inside the repository (paths are relative to %s)", label, f, dirLabel(c.base))
			ok = false
		case !isFile(c.fsys, full):
			c.errorf(i, "%s: file %s not found (paths are relative to %s)", label, full, dirLabel(c.base))
			ok = false
		default:
			s.Files = append(s.Files, full)
		}
	}
	return ok
}

// dir sets the stack's working dir: dir if given, else the first file's folder, else
// the folder named after the stack; false when it is bad.
func (c *layoutCheck) dir(i int, label string, ls layoutStack, s *StackSource) bool {
	dir := ls.Dir
	if dir == "" {
		if len(ls.Files) > 0 {
			s.Dir = path.Dir(path.Join(c.base, ls.Files[0]))
			return true
		}
		dir = ls.Name
	}
	full, ok := c.resolve(dir)
	if !ok {
		c.errorf(i, "%s: dir %q is not a path inside the repository (paths are relative to %s)", label, dir, dirLabel(c.base))
		return false
	}
	if info, err := fs.Stat(c.fsys, full); err != nil || !info.IsDir() {
		if ls.Dir == "" {
			c.errorf(i, "%s: no files given and no folder %s to find them in: set files", label, full)
		} else {
			c.errorf(i, "%s: dir %s not found (paths are relative to %s)", label, full, dirLabel(c.base))
		}
		return false
	}
	s.Dir = full
	return true
}

// discoverFile finds the Compose file of an entry that lists none in its dir.
func (c *layoutCheck) discoverFile(i int, label string, s *StackSource) error {
	entries, err := fs.ReadDir(c.fsys, s.Dir)
	if err != nil {
		return fmt.Errorf("read directory %s: %w", s.Dir, err)
	}
	file, err := findComposeFile(c.fsys, s.Dir, entries)
	switch {
	case err != nil:
		c.errorf(i, "%s: %v", label, err)
	case file == "":
		c.errorf(i, "%s: no Compose file in %s (looked for %s): set files", label, s.Dir, strings.Join(composeFileNames, ", "))
	default:
		s.Files = []string{file}
	}
	return nil
}

// envFiles resolves the entry's env files into s; without env_files, the dir's .env
// if there is one.
func (c *layoutCheck) envFiles(i int, label string, ls layoutStack, s *StackSource) {
	if ls.EnvFiles == nil {
		if env := path.Join(s.Dir, envFileName); s.Dir != "" && isFile(c.fsys, env) {
			s.EnvFiles = []string{env}
		}
	}
	for _, f := range ls.EnvFiles {
		full, ok := c.resolve(f)
		switch {
		case !ok:
			c.errorf(i, "%s: env file %q is not a path inside the repository (paths are relative to %s)", label, f, dirLabel(c.base))
		case !isFile(c.fsys, full):
			c.errorf(i, "%s: env file %s not found (paths are relative to %s)", label, full, dirLabel(c.base))
		default:
			s.EnvFiles = append(s.EnvFiles, full)
		}
	}
}

// checkDependencies checks depends_on once every name is known.
func (c *layoutCheck) checkDependencies(stacks []StackSource) {
	for _, s := range stacks {
		i := c.first[s.Name]
		for _, d := range s.DependsOn {
			switch {
			case d == s.Name:
				c.errorf(i, "stack %q depends on itself: remove it from depends_on", s.Name)
			case !hasStack(stacks, d):
				c.errorf(i, "stack %q depends on %q, which %s does not list (stacks: %s)", s.Name, d, c.layoutPath, stackNames(stacks))
			}
		}
	}
	if cycle := findCycle(stacks); cycle != nil {
		c.errorf(c.first[cycle[0]], "stacks depend on each other in a cycle: %s: break it in depends_on", strings.Join(cycle, " -> "))
	}
}

func dirLabel(dir string) string {
	if dir == "." {
		return "the repository root"
	}
	return dir + "/"
}

func hasStack(stacks []StackSource, name string) bool {
	return slices.ContainsFunc(stacks, func(s StackSource) bool { return s.Name == name })
}

func stackNames(stacks []StackSource) string {
	names := make([]string, len(stacks))
	for i, s := range stacks {
		names[i] = s.Name
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// findCycle returns a dependency cycle as the names along it, first name repeated at the
// end, or nil. Stacks are visited by name so that the same cycle is always reported.
func findCycle(stacks []StackSource) []string {
	deps := map[string][]string{}
	names := make([]string, 0, len(stacks))
	for _, s := range stacks {
		deps[s.Name] = s.DependsOn
		names = append(names, s.Name)
	}
	sort.Strings(names)
	const (
		unvisited = iota
		onPath
		done
	)
	state := map[string]int{}
	var pathStack []string
	var visit func(n string) []string
	visit = func(n string) []string {
		state[n] = onPath
		pathStack = append(pathStack, n)
		for _, d := range deps[n] {
			if _, known := deps[d]; !known || d == n {
				continue // reported above
			}
			switch state[d] {
			case onPath:
				start := slices.Index(pathStack, d)
				return append(slices.Clone(pathStack[start:]), d)
			case unvisited:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		pathStack = pathStack[:len(pathStack)-1]
		state[n] = done
		return nil
	}
	for _, n := range names {
		if state[n] == unvisited {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}
