package endpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// DefaultContext is the context that is always there: the local socket, or
// BERTH_HOST. `context use default` stops using a stored one.
const DefaultContext = "default"

// ErrNoContext is a context name that is not stored.
var ErrNoContext = errors.New("no such context")

// Context is a named endpoint, as `berth context create` stores it.
type Context struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Endpoint    Endpoint `json:"endpoint"`
}

// Store keeps contexts as files under a configuration folder: contexts/NAME.json,
// and the current context's name in config.json.
type Store struct{ dir string }

// NewStore returns the store of the configuration folder dir (see ConfigDir).
func NewStore(dir string) *Store { return &Store{dir: dir} }

// config is config.json.
type config struct {
	CurrentContext string `json:"current_context,omitempty"`
}

var contextName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.+-]{0,63}$`)

func checkName(name string) error {
	if !contextName.MatchString(name) {
		return fmt.Errorf("invalid context name %q: use letters, digits, '_', '.', '+' and '-', starting with a letter or digit, at most 64", name)
	}
	return nil
}

func (s *Store) path(name string) string { return filepath.Join(s.dir, "contexts", name+".json") }

// Create stores a new context; a name in use is refused.
func (s *Store) Create(c Context) error {
	if err := checkName(c.Name); err != nil {
		return err
	}
	if c.Name == DefaultContext {
		return fmt.Errorf("context %q is the built-in one (the local socket, or %s): choose another name", DefaultContext, EnvHost)
	}
	if _, err := os.Stat(s.path(c.Name)); err == nil {
		return fmt.Errorf("context %s already exists: remove it first (berth context rm %s) or choose another name", c.Name, c.Name)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(s.path(c.Name), b)
}

// Get reads a stored context.
func (s *Store) Get(name string) (*Context, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s ('berth context ls' lists them)", ErrNoContext, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read context %s: %w", name, err)
	}
	var c Context
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("context %s: %s is not a context berth wrote: %w", name, s.path(name), err)
	}
	c.Name = name
	return &c, nil
}

// List returns the stored contexts by name.
func (s *Store) List() ([]*Context, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, "contexts"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list contexts: %w", err)
	}
	var out []*Context
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || checkName(name) != nil {
			continue
		}
		c, err := s.Get(name)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Remove deletes a stored context; the current one is refused unless force, which
// then makes the default current.
func (s *Store) Remove(name string, force bool) error {
	if _, err := s.Get(name); err != nil {
		return err
	}
	cur, err := s.Current()
	if err != nil {
		return err
	}
	if cur == name {
		if !force {
			return fmt.Errorf("context %s is in use: 'berth context use default' first, or remove it with --force", name)
		}
		if err := s.Use(DefaultContext); err != nil {
			return err
		}
	}
	if err := os.Remove(s.path(name)); err != nil {
		return fmt.Errorf("remove context %s: %w", name, err)
	}
	return nil
}

// Use makes name the current context; DefaultContext goes back to the local socket.
func (s *Store) Use(name string) error {
	if name != DefaultContext {
		if _, err := s.Get(name); err != nil {
			return err
		}
	} else {
		name = ""
	}
	b, err := json.MarshalIndent(config{CurrentContext: name}, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(s.dir, "config.json"), b)
}

// Current is the current context's name, "" for the default.
func (s *Store) Current() (string, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, "config.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the current context: %w", err)
	}
	var c config
	if err := json.Unmarshal(b, &c); err != nil {
		return "", fmt.Errorf("%s is not a configuration berth wrote: %w", filepath.Join(s.dir, "config.json"), err)
	}
	return c.CurrentContext, nil
}

// writeFile writes b to path through a temporary file, so that a reader never sees
// half of it; the folders are the user's only (paths to keys are in them).
func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
