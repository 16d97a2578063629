package main

import (
	"errors"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func testRoot() *cobra.Command {
	return newRootCommand(strings.NewReader(""), io.Discard, io.Discard)
}

// A backquoted word in a flag's usage becomes its value name in --help (pflag's
// UnquoteUsage): `berth join --help` once showed "--token berth join-token ...".
func TestNoFlagUsageHasBackquotes(t *testing.T) {
	walkCommands(testRoot(), func(cmd *cobra.Command) {
		cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if strings.Contains(f.Usage, "`") {
				t.Errorf("%s --%s: usage %q has a backquote", cmd.CommandPath(), f.Name, f.Usage)
			}
		})
	})
}

func TestArgCountErrorsNameTheCommandAndItsHelp(t *testing.T) {
	var out strings.Builder
	for _, args := range [][]string{
		{"service", "scale"},
		{"node", "ls", "extra"},
		{"secret", "create", "only-a-name"},
		{"swarm", "ca", "extra"},
	} {
		r := runBerth(t, "", args...)
		if r.code != exitError {
			t.Errorf("%v: exit %d", args, r.code)
		}
		out.WriteString("$ berth " + strings.Join(args, " ") + "\n" + r.stderr)
	}
	checkGolden(t, "arg_count_errors", out.String())
}

// cobra's validators' messages are what wrapArgErrors rewrites: a cobra that words
// them otherwise fails here rather than printing its own words.
func TestArgErrorsKnowCobrasMessages(t *testing.T) {
	cmd := &cobra.Command{Use: "x"}
	for _, tc := range []struct {
		args cobra.PositionalArgs
		n    int
		want string
	}{
		{cobra.ExactArgs(1), 0, "requires exactly 1 argument"},
		{cobra.ExactArgs(2), 1, "requires exactly 2 arguments"},
		{cobra.MinimumNArgs(1), 0, "requires at least 1 argument"},
		{cobra.MaximumNArgs(1), 2, "requires at most 1 argument"},
		{cobra.RangeArgs(1, 2), 3, "requires at least 1 and at most 2 arguments"},
		{cobra.NoArgs, 1, "accepts no arguments"},
	} {
		err := argError(cmd, tc.args(cmd, make([]string, tc.n)))
		var ace *argCountError
		if !errors.As(err, &ace) || ace.says != tc.want {
			t.Errorf("%d args: %v, want %q", tc.n, err, tc.want)
		}
	}
}

// Exit codes are the root's (0, 1 for differences, 2 for errors): a help text that
// promises exit 1 must be about differences.
func TestHelpTextsPromiseTheExitCodesUsed(t *testing.T) {
	exit1 := regexp.MustCompile(`exit(?: code)? 1\b[^.]*`)
	walkCommands(testRoot(), func(cmd *cobra.Command) {
		for _, m := range exit1.FindAllString(cmd.Long, -1) {
			if !strings.Contains(m, "difference") {
				t.Errorf("%s --help: %q: exit 1 is for differences only, errors exit 2", cmd.CommandPath(), m)
			}
		}
	})
}

// berth swarm's commands and the top-level ones they alias take the same flags.
func TestSwarmCommandsAliasTheTopLevelOnes(t *testing.T) {
	root := testRoot()
	swarm, _, err := root.Find([]string{"swarm"})
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range swarm.Commands() {
		// Only the commands berth had at the top level before the swarm group have an alias there.
		if slices.Contains([]string{"backup", "ca", "restore"}, sub.Name()) {
			continue
		}
		top, _, err := root.Find([]string{sub.Name()})
		if err != nil || top == root {
			t.Errorf("swarm %s has no top-level alias", sub.Name())
			continue
		}
		if got, want := flagNames(sub), flagNames(top); !slices.Equal(got, want) {
			t.Errorf("swarm %s flags %v, %s flags %v", sub.Name(), got, top.Name(), want)
		}
	}
}

func flagNames(cmd *cobra.Command) []string {
	var names []string
	cmd.LocalFlags().VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	return names
}

func TestVersionWithoutADaemon(t *testing.T) {
	r := runBerth(t, "", "version", "-H", "unix:///nonexistent/berth.sock")
	if r.code != exitError || !strings.HasPrefix(r.stdout, "Client:\n Version:") || strings.Contains(r.stdout, "Server:") ||
		!strings.Contains(r.stderr, "cannot connect to the berth daemon at unix:///nonexistent/berth.sock") {
		t.Errorf("version without a daemon: %v", r)
	}
}

// `berth config -c FILE` was the Compose printer: its help says where that went.
func TestConfigGroupPointsToStackConfig(t *testing.T) {
	r := runBerth(t, "", "config", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "'berth stack config -c FILE'") {
		t.Errorf("config --help: %v", r)
	}
}
