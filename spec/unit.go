package spec

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/consts"
	"github.com/compose-spec/compose-go/v2/interpolation"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/tree"
	"github.com/compose-spec/compose-go/v2/types"
	"golang.org/x/sync/errgroup"
)

// A unit is one call of the Compose loader. A stack is loaded as one unit per service
// (each with the top-level sections of every file), because the loader's cost grows
// faster than the number of services, units run in parallel, and an unchanged unit can
// come from the Cache. Files the split cannot reproduce exactly (include, extends,
// !reset/!override tags, YAML the splitter cannot decode) load as a single unit.
type unit struct {
	files []types.ConfigFile
	// service is the unit's one service, empty for a whole-files unit.
	service  string
	unitKeys // key zero: not cacheable; shape zero: loaded on its own
}

// unitResult is what the loader made of a unit. Cached results are shared between loads
// and must not be modified.
type unitResult struct {
	project *types.Project
	unset   []string
	errors  []Problem
	// dropped are the values the loader refused and the unit was loaded without.
	dropped  []fieldKey
	warnings []Warning
}

// loaderOutput is everything Load takes from the files before converting: the prescan's
// findings, the loader's result for each unit, and each file as decoded (nil when it
// could not be), to name the file of a problem. Cached outputs must not be modified.
type loaderOutput struct {
	prescan *problems
	units   []*unitResult
	raws    []map[string]any
}

// runLoader prescans the files and runs the Compose loader on them. With a cache, files
// seen before (same bytes, names, environment) skip both; otherwise only units not seen
// before are loaded.
func runLoader(ctx context.Context, opts LoadOptions, env map[string]string) *loaderOutput {
	prefix := cacheKeyPrefix(opts, env)
	var key [sha256.Size]byte
	if opts.Cache != nil {
		h := sha256.New()
		h.Write([]byte("files\x00"))
		h.Write(prefix)
		for _, f := range opts.Files {
			fmt.Fprintf(h, "%s\x00%d\x00", f.Name, len(f.Content))
			h.Write(f.Content)
		}
		h.Sum(key[:0])
		if out, ok := opts.Cache.get(key).(*loaderOutput); ok {
			return out
		}
	}
	out := &loaderOutput{prescan: &problems{stack: opts.Stack}}
	var units []unit
	units, out.raws = splitUnits(opts, prefix, out.prescan)
	out.units = make([]*unitResult, len(units))
	loadUnits(ctx, units, out.units, opts, env)
	opts.Cache.put(key, out)
	return out
}

// splitUnits parses the files, runs the prescan on each, and cuts them into units. It
// returns no unit when the prescan refused a file. The loader must not modify the
// decoded files it also returns: units that drop a value copy what they change.
func splitUnits(opts LoadOptions, cachePrefix []byte, ps *problems) ([]unit, []map[string]any) {
	whole := unit{}
	raws := make([]map[string]any, len(opts.Files))
	splittable := true
	for i, f := range opts.Files {
		cf, raw, refused := prescanFile(f, opts.Cache, ps)
		if refused {
			return nil, raws // reported; the loader must not see this file
		}
		whole.files = append(whole.files, cf)
		raws[i] = raw
		if raw == nil || bytes.Contains(f.Content, []byte("!reset")) || bytes.Contains(f.Content, []byte("!override")) {
			splittable = false
		}
		if _, ok := raw["include"]; ok {
			splittable = false
		}
	}
	if !splittable {
		return []unit{whole}, raws
	}

	services := map[string]bool{}
	for _, raw := range raws {
		svcs, ok := raw["services"].(map[string]any)
		if !ok && raw["services"] != nil {
			return []unit{whole}, raws // not a mapping: let the loader say so
		}
		for name, s := range svcs {
			if m, ok := s.(map[string]any); ok && m["extends"] != nil {
				return []unit{whole}, raws
			}
			services[name] = true
		}
	}
	if len(services) == 0 {
		return []unit{whole}, raws
	}

	heads := make([][sha256.Size]byte, len(raws))
	for i, raw := range raws {
		heads[i] = headDigest(opts.Files[i].Name, raw)
	}
	units := make([]unit, 0, len(services))
	for _, name := range slices.Sorted(maps.Keys(services)) {
		// Every unit shares the sections besides services: loadUnit copies them.
		u := unit{service: name}
		for i, raw := range raws {
			doc := make(map[string]any, len(raw))
			for k, v := range raw {
				if k != "services" {
					doc[k] = v
				}
			}
			if svcs, _ := raw["services"].(map[string]any); svcs != nil {
				if s, ok := svcs[name]; ok {
					doc["services"] = map[string]any{name: s}
				}
			}
			u.files = append(u.files, types.ConfigFile{Filename: opts.Files[i].Name, Config: doc})
		}
		if keys, ok := keysOf(cachePrefix, heads, u.files, name); ok {
			u.unitKeys = keys
		}
		units = append(units, u)
	}
	return units, raws
}

// cacheKeyPrefix covers everything besides the files that the loader's output depends on.
func cacheKeyPrefix(opts LoadOptions, env map[string]string) []byte {
	b, _ := json.Marshal(env) // map keys are sorted: stable
	return fmt.Appendf(nil, "%s\x00%s\x00%s\x00", opts.Stack, opts.WorkingDir, b)
}

// loadUnits runs the loader on every unit, one worker per CPU, taking what it can from
// the cache and from units of the same shape.
func loadUnits(ctx context.Context, units []unit, results []*unitResult, opts LoadOptions, env map[string]string) {
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	sh := &shapes{}
	for i, u := range units {
		g.Go(func() error {
			results[i], _ = opts.Cache.get(u.key).(*unitResult)
			if results[i] == nil {
				results[i] = loadShaped(ctx, u, sh, opts, env)
				opts.Cache.put(u.key, results[i])
			}
			return nil
		})
	}
	_ = g.Wait() // workers report through results
}

// loadShaped loads a unit, or makes its result from the first unit of its shape, loaded
// in this load or an earlier one.
func loadShaped(ctx context.Context, u unit, sh *shapes, opts LoadOptions, env map[string]string) *unitResult {
	if u.shape == ([sha256.Size]byte{}) {
		return loadUnit(ctx, u, opts, env)
	}
	slot := sh.slot(u.shape)
	var own *unitResult
	slot.once.Do(func() {
		slot.base, _ = opts.Cache.get(u.shape).(*shapeBase)
		if slot.base == nil {
			own = loadUnit(ctx, u, opts, env)
			slot.base = &shapeBase{result: own, service: u.service, values: u.values}
			opts.Cache.put(u.shape, slot.base)
		}
	})
	if own != nil {
		return own
	}
	if r, ok := slot.base.resultFor(u.service, u.values); ok {
		return r
	}
	return loadUnit(ctx, u, opts, env)
}

// maxLoaderPasses bounds how often a unit is loaded again without a value the loader
// refused: each pass finds at most one more of its errors.
const maxLoaderPasses = 8

func loadUnit(ctx context.Context, u unit, opts LoadOptions, env map[string]string) (r *unitResult) {
	r = &unitResult{}
	ps := &problems{stack: opts.Stack}
	// The loader rewrites maps in place, and units share what they were cut from.
	u.files = copyFiles(u.files)
	// compose-go type-asserts its way through parts of the model before validating them;
	// a panic in there must reach the user as an error, never as a stack trace.
	defer func() {
		if p := recover(); p != nil {
			r.project = nil
			r.errors = append(r.errors, Problem{Stack: opts.Stack, Message: fmt.Sprintf("the Compose loader failed on this input: %v", p)})
		}
	}()
	unset := map[string]bool{}
	files, drops := u.files, dropLog{}
	for range maxLoaderPasses {
		lint := &problems{stack: opts.Stack}
		project, err := loadFiles(ctx, files, opts, env, unset, lint)
		if err == nil {
			ps.add(lint)
			r.project = project
			break
		}
		// The loader stops at its first error: report it in berth's terms, drop the value
		// at fault and load again, so that the unit's other problems are found too.
		again := false
		for _, f := range loaderFaults(err, opts.Stack, files) {
			drops.renumber(&f)
			ps.errors = append(ps.errors, f.problem)
			if f.path != nil {
				var dropped bool
				files, dropped = withoutPath(files, f.path)
				again = again || dropped
				r.dropped = append(r.dropped, fieldKey{f.problem.Service, f.problem.Field})
			}
		}
		if !again {
			ps.add(lint)
			break
		}
	}
	r.unset = slices.Sorted(maps.Keys(unset))
	r.errors, r.warnings = ps.errors, ps.warnings
	return r
}

// loadFiles runs the Compose loader once, linting the model between its two stages.
func loadFiles(ctx context.Context, files []types.ConfigFile, opts LoadOptions, env map[string]string, unset map[string]bool, ps *problems) (*types.Project, error) {
	details := types.ConfigDetails{
		// compose-go joins relative paths (include, extends) onto this; berth resolves the
		// paths it reads itself, through FS.
		WorkingDir:  "/" + cleanDir(opts.WorkingDir),
		ConfigFiles: files,
		Environment: maps.Clone(env),
	}
	// The loader sets this itself before interpolating; set here for berth's own pass.
	details.Environment[consts.ComposeProjectName] = opts.Stack
	substitute := func(s string, m template.Mapping) (string, error) {
		return template.SubstituteWithOptions(s, m, template.WithoutLogging, template.WithReplacementFunction(noteUnset(unset)))
	}
	interpolated, done := interpolateUnit(files, substitute, details.LookupEnv)
	if done {
		details.ConfigFiles = interpolated
	}
	options := func(o *loader.Options) {
		o.SetProjectName(opts.Stack, true)
		o.ResolvePaths = false
		o.SkipConsistencyCheck = true // berth checks references itself and reports all of them
		o.SkipResolveEnvironment = true
		o.SkipResolveLabels = true
		o.Profiles = []string{"*"} // a stack deploys every service; profiles are warned about
		o.Interpolate.Substitute = substitute
		if done {
			// Nothing left to substitute or cast: the walk is a copy.
			o.Interpolate.Substitute = func(s string, _ template.Mapping) (string, error) { return s, nil }
			o.Interpolate.TypeCastMapping = map[tree.Path]interpolation.Cast{}
		}
	}
	model, err := loader.LoadModelWithContext(ctx, details, options)
	if err != nil {
		return nil, err
	}
	lintModel(model, ps)
	return loader.ModelToProject(model, loader.ToOptions(&details, []func(*loader.Options){options}), details)
}

// noteUnset wraps compose-go's replacement of one ${...} so that every variable that is
// not set and has no default is recorded, including those nested in a default
// (${TAG:-${FALLBACK}}), which compose-go substitutes on its own.
func noteUnset(unset map[string]bool) template.ReplacementFunc {
	var replace template.ReplacementFunc
	replace = func(sub string, m template.Mapping, cfg *template.Config) (string, error) {
		v, applied, err := template.DefaultReplacementAppliedFunc(sub, m, cfg)
		if err != nil || strings.HasPrefix(sub, "$$") {
			return v, err
		}
		if !applied {
			unset[strings.Trim(sub, "${}")] = true
			return v, nil
		}
		// ${NAME:-default} or ${NAME-default} whose default was used: look inside it.
		inner := strings.TrimSuffix(strings.TrimPrefix(sub, "${"), "}")
		if i := strings.IndexAny(inner, ":-"); i > 0 && strings.Contains(inner[i:], "$") {
			name, def := inner[:i], strings.TrimPrefix(strings.TrimPrefix(inner[i:], ":"), "-")
			if val, set := m(name); !set || (val == "" && inner[i] == ':') {
				_, _ = template.SubstituteWithOptions(def, m, template.WithoutLogging, template.WithReplacementFunction(replace))
			}
		}
		return v, nil
	}
	return replace
}

// Cache keeps the Compose loader's results by content: per set of files, and per service
// unit. It is safe for concurrent use. It holds at most a fixed number of entries and
// starts over when full, which keeps it bounded without bookkeeping on the hot path.
type Cache struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]any // *loaderOutput, *unitResult or *shapeBase
}

const cacheLimit = 20000

// NewCache returns an empty cache for LoadOptions.Cache.
func NewCache() *Cache { return &Cache{entries: map[[sha256.Size]byte]any{}} }

func (c *Cache) get(key [sha256.Size]byte) any {
	if c == nil || key == ([sha256.Size]byte{}) {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[key]
}

func (c *Cache) put(key [sha256.Size]byte, r any) {
	if c == nil || key == ([sha256.Size]byte{}) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= cacheLimit {
		clear(c.entries)
	}
	c.entries[key] = r
}

func copyFiles(files []types.ConfigFile) []types.ConfigFile {
	out := slices.Clone(files)
	for i, f := range out {
		if f.Config != nil {
			out[i].Config = deepCopy(f.Config).(map[string]any)
		}
	}
	return out
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = deepCopy(e)
		}
		return l
	default:
		return v
	}
}
