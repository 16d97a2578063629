package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// positionalKinds reads the kinds of names a command takes from its usage line:
// SERVICE, NODE, STACK, SECRET, CONFIG, and NAME for sources, outside flags.
func positionalKinds(cmd *cobra.Command) []nameKind {
	use := regexp.MustCompile(`\[-[^\]]*\]|\(-[^)]*\)|--?\S+`).ReplaceAllString(cmd.Use, " ")
	var kinds []nameKind
	for _, w := range strings.Fields(use)[1:] {
		w = strings.Trim(w, "[].")
		w, _, _ = strings.Cut(w, "=")
		w, _, _ = strings.Cut(w, "|")
		switch {
		case w == "NAME" && cmd.Parent().Name() == "source":
			kinds = append(kinds, kindSource)
		case w == strings.ToUpper(w) && completionKinds[nameKind(strings.ToLower(w))]:
			kinds = append(kinds, nameKind(strings.ToLower(w)))
		}
	}
	return kinds
}

var completionKinds = map[nameKind]bool{kindService: true, kindNode: true, kindStack: true, kindSource: true, kindSecret: true, kindConfig: true}

// newNames are commands whose name argument names a new object: nothing to complete.
var newNames = map[string]bool{"source add": true, "secret create": true, "config create": true}

func TestEveryNamedArgumentCompletes(t *testing.T) {
	root := testRoot()
	seen := map[string]bool{}
	walkCommands(root, func(cmd *cobra.Command) {
		path := strings.TrimPrefix(cmd.CommandPath(), "berth ")
		kinds := positionalKinds(cmd)
		if len(kinds) == 0 || newNames[path] {
			return
		}
		seen[path] = true
		a, ok := completions[path]
		switch {
		case !ok:
			t.Errorf("berth %s takes a %s name: add it to the completions table", path, kinds[0])
		case a.kind != kinds[0]:
			t.Errorf("berth %s takes a %s name, the completions table says %s", path, kinds[0], a.kind)
		case cmd.ValidArgsFunction == nil:
			t.Errorf("berth %s: in the table, but no completion registered", path)
		}
	})
	for path := range completions {
		if !seen[path] {
			t.Errorf("completions table: berth %s is no command taking a name", path)
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := runBerth(t, "", "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, "__complete") {
			t.Errorf("completion %s: exit %d, %d bytes\n%s", shell, r.code, len(r.stdout), r.stderr)
		}
	}
	if r := runBerth(t, "", "completion", "ksh"); r.code != exitError || !strings.Contains(r.stderr, `unknown shell "ksh": berth completes bash, zsh and fish`) {
		t.Errorf("completion ksh: %v", r)
	}
}
