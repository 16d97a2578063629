package ui

import (
	"fmt"
	"html/template"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
)

// pageNames are the templates/NAME.html files, each defining "main" for layout.html.
var pageNames = []string{"overview", "source", "stack", "service", "nodes", "node", "error", "login", "loggedin"}

func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("ui: parse the layout: %w", err)
	}
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("ui: parse page %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

var funcs = template.FuncMap{
	"short":    shortRevision,
	"when":     when,
	"ago":      ago,
	"labels":   labels,
	"reason":   taskReason,
	"running":  func(t *api.TaskInfo) bool { return t.Status.State == model.TaskRunning },
	"ok":       func(running, desired uint64) bool { return running >= desired },
	"statusOf": sourceClass,
	"lastSync": lastSync,
}

// lastSync is when the source last synced, whatever the result (the applied
// revision's time is older when later syncs changed nothing).
func lastSync(s *model.Source) time.Time {
	if n := len(s.History); n > 0 {
		return s.History[n-1].Time
	}
	return s.LastAppliedAt
}

// shortRevision is a commit's first 12 hex digits, as `source ls` shows them.
func shortRevision(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// ago is how long before now t was, to the second.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}

func labels(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ", ")
}

// taskReason is why a task does not run: its error, else its status message.
func taskReason(t *api.TaskInfo) string {
	if t.Status.State == model.TaskRunning {
		return ""
	}
	if t.Status.Err != "" {
		return t.Status.Err
	}
	return t.Status.Message
}

// sourceClass is the CSS class of a source's status word.
func sourceClass(display string) string {
	switch display {
	case api.SourceSynced:
		return "good"
	case api.SourceFailed, api.SourceDegraded:
		return "bad"
	default:
		return "warn"
	}
}
