package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/berthd/berth/spec"
)

// DefaultConfigFile is where `berth daemon` reads its settings, as dockerd reads
// /etc/docker/daemon.json.
const DefaultConfigFile = "/etc/berth/daemon.yaml"

// ErrConfigFile marks a daemon configuration file that cannot be used.
var ErrConfigFile = errors.New("daemon configuration file")

// ApplyConfigFile sets the flags of fs that file names and the command line left unset:
// the file is a YAML mapping whose keys are the flags' names (`listen-addr:
// 0.0.0.0:4270`), so the two cannot drift and a flag always wins over the file. Keys in
// notKeys (the flags that say where the file is) and unknown keys are refused with the
// key named. A missing file is no error unless required.
func ApplyConfigFile(flags *pflag.FlagSet, file string, required bool, notKeys ...string) error {
	data, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !required:
		return nil
	case err != nil:
		return fmt.Errorf("%w %s: %w", ErrConfigFile, file, err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(data, &values); err != nil {
		return fmt.Errorf("%w %s: not a YAML mapping of settings: %w", ErrConfigFile, file, err)
	}
	keys := configKeys(flags, notKeys)
	var problems []string
	for _, key := range slices.Sorted(maps.Keys(values)) {
		if err := applyKey(flags, keys, key, values[key]); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w %s: %s", ErrConfigFile, file, strings.Join(problems, "; "))
	}
	return nil
}

func applyKey(flags *pflag.FlagSet, keys []string, key string, v any) error {
	if !slices.Contains(keys, key) {
		hint := "the keys are the daemon's flags without --: " + strings.Join(keys, ", ")
		if near := spec.ClosestWord(key, keys); near != "" {
			hint = "did you mean " + near + "?"
		}
		return fmt.Errorf("unknown key %q (%s)", key, hint)
	}
	if flags.Changed(key) {
		return nil // the command line wins
	}
	var text string
	switch v := v.(type) {
	case string, bool, int, float64:
		text = fmt.Sprint(v)
	case time.Time:
		text = v.Format(time.RFC3339)
	default:
		return fmt.Errorf("key %s: write one value, as on the command line", key)
	}
	if err := flags.Set(key, text); err != nil {
		return fmt.Errorf("key %s: %w", key, err)
	}
	return nil
}

// configKeys are the flags a file may set, hidden ones included: they are settings too.
func configKeys(flags *pflag.FlagSet, notKeys []string) []string {
	var keys []string
	flags.VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" && !slices.Contains(notKeys, f.Name) {
			keys = append(keys, f.Name)
		}
	})
	return keys
}
