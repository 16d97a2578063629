package main

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/spf13/cobra"
)

// Argument-count errors read as Docker's: they name the command and its --help, then
// show its usage. cobra's validators (ExactArgs, MinimumNArgs...) say neither, so
// wrapArgErrors rewrites their messages for every command of the tree, which keeps
// the command files on cobra's validators, commands added later included.

// cobraArgErrors are the messages of cobra's validators and what they say in Docker's
// words. TestArgErrorsKnowCobrasMessages fails when cobra words them otherwise.
var cobraArgErrors = []struct {
	re   *regexp.Regexp
	says func(m []string) string
}{
	{regexp.MustCompile(`^accepts (\d+) arg\(s\), received \d+$`), func(m []string) string { return "requires exactly " + arguments(m[1]) }},
	{regexp.MustCompile(`^requires at least (\d+) arg\(s\), only received \d+$`), func(m []string) string { return "requires at least " + arguments(m[1]) }},
	{regexp.MustCompile(`^accepts at most (\d+) arg\(s\), received \d+$`), func(m []string) string { return "requires at most " + arguments(m[1]) }},
	{regexp.MustCompile(`^accepts between (\d+) and (\d+) arg\(s\), received \d+$`), func(m []string) string {
		return "requires at least " + m[1] + " and at most " + arguments(m[2])
	}},
	// cobra.NoArgs: on a command without subcommands, an argument is not a command.
	{regexp.MustCompile(`^unknown command ".*" for ".*"$`), func([]string) string { return "accepts no arguments" }},
}

func arguments(n string) string {
	if v, _ := strconv.Atoi(n); v == 1 {
		return n + " argument"
	}
	return n + " arguments"
}

// wrapArgErrors gives every command below root (root included) Docker's
// argument-count errors. Commands that hold others keep their own Args
// (unknownCommand, with its did-you-mean).
func wrapArgErrors(root *cobra.Command) {
	walkCommands(root, func(cmd *cobra.Command) {
		if cmd.Args == nil || cmd.HasSubCommands() {
			return
		}
		check := cmd.Args
		cmd.Args = func(cmd *cobra.Command, args []string) error {
			return argError(cmd, check(cmd, args))
		}
	})
}

// argError rewrites an error of one of cobra's validators and passes any other through.
func argError(cmd *cobra.Command, err error) error {
	if err == nil {
		return nil
	}
	for _, e := range cobraArgErrors {
		if m := e.re.FindStringSubmatch(err.Error()); m != nil {
			return &argCountError{cmd: cmd, says: e.says(m)}
		}
	}
	return err
}

// argCountError is a command given the wrong number of arguments.
type argCountError struct {
	cmd  *cobra.Command
	says string
}

func (e *argCountError) Error() string {
	path := e.cmd.CommandPath()
	return fmt.Sprintf("%q %s.\nSee '%s --help'.\n\nUsage:  %s\n\n%s", path, e.says, path, e.cmd.UseLine(), e.cmd.Short)
}

// walkCommands calls fn on cmd and every command below it.
func walkCommands(cmd *cobra.Command, fn func(*cobra.Command)) {
	fn(cmd)
	for _, sub := range cmd.Commands() {
		walkCommands(sub, fn)
	}
}
