// Command berth is the one binary of berth: a GitOps declarative applier for
// Swarm-style Compose stacks. The files of this package hold flags and printing
// only; the work is done by spec/, applier/ and cluster/ (the daemon is
// daemon/, the other cluster commands are calls to it through cluster/api).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/berthd/berth/runtime/logdriver"
	"github.com/berthd/berth/spec"
)

// Exit codes follow diff(1), Argo CD and Flux, for every command alike.
const (
	exitOK          = 0
	exitDifferences = 1
	exitError       = 2
)

// version is stamped at link time by the Makefile (-X main.version=...); it is never
// written at run time.
var version string

// errDifferences is returned by commands whose answer is "yes, there are differences":
// it is not a failure, only exit code 1, and nothing more is printed for it.
var errDifferences = errors.New("differences found")

func main() {
	// containerd's shim starts this same binary as the tasks' log driver, with
	// arguments that are not a command line of ours.
	if logdriver.Invoked(os.Args[1:]) {
		os.Exit(logdriver.Main())
	}
	// compose-go logs through the global logrus logger; spec hands back the same
	// findings as warnings, which berth prints itself, so the log would only repeat them.
	logrus.SetOutput(io.Discard)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole CLI minus the process: tests call it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return guard(stderr, func() int {
		root := newRootCommand(stdin, stdout, stderr)
		root.SetArgs(args)
		return report(stderr, root.ExecuteContext(ctx))
	})
}

// guard turns a panic into a one-line internal error: a user should never see a Go
// stack trace.
func guard(stderr io.Writer, fn func() int) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "berth: internal error: %v (this is a bug in berth, please report it)\n", r)
			code = exitError
		}
	}()
	return fn()
}

// report prints err once, in the form users and scripts can rely on, and returns the
// exit code.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, errDifferences) {
		return exitDifferences
	}
	var verr *spec.ValidationError
	if errors.As(err, &verr) {
		// Context added on the way up ("revision abc123: ...") is said once, then
		// every problem on a line of its own so that all of them are seen in one run.
		if where := strings.TrimSuffix(strings.TrimSuffix(err.Error(), verr.Error()), ": "); where != "" && where != err.Error() {
			fmt.Fprintf(stderr, "berth: %s\n", where)
		}
		printProblems(stderr, "error", verr.Problems)
		return exitError
	}
	fmt.Fprintf(stderr, "berth: %s\n", err)
	return exitError
}

func newRootCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "berth",
		Short: "GitOps declarative applier for Swarm-style Compose stacks",
		Long: `berth applies Compose stacks kept in Git to a cluster, the way Docker Swarm mode
and a GitOps controller do together, in one binary.

Exit codes: 0 success (no differences), 1 differences found (diff), 2 error.`,
		Version:           versionString(),
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		Args:              unknownCommand,
		// cobra's own default, which SuggestionsFor does not apply.
		SuggestionsMinimumDistance: suggestionDistance,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("berth version {{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w\nSee '%s --help'.", err, cmd.CommandPath())
	})

	host := &hostFlag{}
	host.register(root, os.Getenv)
	root.AddCommand(
		newValidateCommand(),
		newDiffCommand(host),
		newDaemonCommand(),
		newInitCommand(host),
		newJoinCommand(host),
		newLeaveCommand(host),
		newInfoCommand(host),
		newUpdateCommand(host),
		newUnlockCommand(host),
		newUnlockKeyCommand(host),
		newJoinTokenCommand(host),
		newNodeCommand(host),
		newStackCommand(host),
		newSourceCommand(host),
		newServiceCommand(host),
		newTaskCommand(host),
		newImageCommand(host),
		newDocsCommand(),
		newSecretCommand(host),
		newConfigCommand(host),
		newSwarmCommand(host),
		newVersionCommand(host),
		newCompletionCommand(),
		newEventsCommand(host),
		newUICommand(host),
	)
	addRemoteCommands(root, host)
	// After every command is added: they apply to the whole tree.
	wrapArgErrors(root)
	registerCompletions(root, host)
	return root
}

// groupCommand is a command that only groups others (`berth node`, `berth service`...):
// alone, it prints its help.
func groupCommand(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:                        use,
		Short:                      short,
		Args:                       unknownCommand,
		SuggestionsMinimumDistance: suggestionDistance,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(subs...)
	return cmd
}

// suggestionDistance is how many edits away a command may be from what was typed for
// a did-you-mean.
const suggestionDistance = 2

// unknownCommand refuses an argument to a command that only holds others, with
// cobra's did-you-mean: cobra.NoArgs, which a command with a RunE would otherwise
// need, suggests nothing, and cobra's own check suggests at the root only.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if near := cmd.SuggestionsFor(args[0]); len(near) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(near, "\n\t") + "\n"
	}
	return fmt.Errorf("%s\nSee '%s --help' for its commands.", msg, cmd.CommandPath())
}

// versionString prefers the version stamped by the Makefile, then what the Go
// toolchain recorded (module version, VCS revision), so `go install` builds say
// something useful too.
func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "dev"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += "+" + s.Value[:12]
		}
	}
	return v
}
