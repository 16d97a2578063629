package spec

import (
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/interpolation"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/tree"
	"github.com/compose-spec/compose-go/v2/types"
)

// A typeCast is one of the loader's own interpolation casts (a string at replicas
// becomes an int), with its path pattern split once.
type typeCast struct {
	parts []string
	cast  interpolation.Cast
}

// loaderCasts are the casts the loader applies while interpolating, read from its
// default options so that the two never disagree.
var loaderCasts = sync.OnceValue(func() []typeCast {
	var casts []typeCast
	for pattern, cast := range loader.ToOptions(&types.ConfigDetails{}, nil).Interpolate.TypeCastMapping {
		casts = append(casts, typeCast{parts: pattern.Parts(), cast: cast})
	}
	return casts
})

// castFor finds the cast of the value at path, as tree.Path.Matches would.
func castFor(path []string) interpolation.Cast {
	for _, c := range loaderCasts() {
		if len(c.parts) == len(path) && partsMatch(c.parts, path) {
			return c.cast
		}
	}
	return nil
}

func partsMatch(pattern, path []string) bool {
	for i, p := range pattern {
		if p != tree.PathMatchAll && p != path[i] {
			return false
		}
	}
	return true
}

// interpolateUnit does the loader's interpolation of a unit's decoded files itself: the
// loader matches the path of every value against each of its casts by splitting both
// into new strings, which was a fifth of a service's load. It reports false, and
// returns nothing, when a file was not decoded (the loader reads its bytes) or when a
// value fails: the loader then interpolates, and says what failed in its own words.
func interpolateUnit(files []types.ConfigFile, substitute func(string, template.Mapping) (string, error), lookup template.Mapping) ([]types.ConfigFile, bool) {
	out := make([]types.ConfigFile, len(files))
	for i, f := range files {
		if f.Config == nil {
			return nil, false
		}
		cfg := make(map[string]any, len(f.Config))
		for key, v := range f.Config {
			// The loader's path of a top-level key is the key itself, dots and all.
			iv, ok := interpolateValue(v, strings.Split(key, "."), substitute, lookup)
			if !ok {
				return nil, false
			}
			cfg[key] = iv
		}
		out[i] = types.ConfigFile{Filename: f.Filename, Config: cfg}
	}
	return out, true
}

// interpolateValue is interpolation.Interpolate's walk for one value at path.
func interpolateValue(v any, path []string, substitute func(string, template.Mapping) (string, error), lookup template.Mapping) (any, bool) {
	switch v := v.(type) {
	case string:
		s, err := substitute(v, lookup)
		if err != nil {
			return nil, false
		}
		cast := castFor(path)
		if cast == nil {
			return s, true
		}
		c, err := cast(s)
		return c, err == nil
	case map[string]any:
		m := make(map[string]any, len(v))
		for key, e := range v {
			ie, ok := interpolateValue(e, append(path, key), substitute, lookup)
			if !ok {
				return nil, false
			}
			m[key] = ie
		}
		return m, true
	case []any:
		l := make([]any, len(v))
		for i, e := range v {
			ie, ok := interpolateValue(e, append(path, tree.PathMatchList), substitute, lookup)
			if !ok {
				return nil, false
			}
			l[i] = ie
		}
		return l, true
	case map[any]any:
		return nil, false // the loader makes its keys strings first, or refuses them
	default:
		return v, true
	}
}
