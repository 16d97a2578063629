package main

import (
	"github.com/spf13/cobra"
)

// newStackConfigCommand is Docker's `stack config`; before issue 19 it was `berth
// config`, which is now the group of cluster configs, as in Docker.
func newStackConfigCommand() *cobra.Command {
	var (
		compose composeFlags
		output  string
	)
	cmd := &cobra.Command{
		Use:   "config -c FILE [-c FILE]... [--stack NAME] [--env-file FILE]...",
		Short: "Print the merged, interpolated, canonical stack",
		Long: `Print a stack the way berth sees it: its Compose files merged in order, variables
interpolated, defaults filled in and every list in canonical order, like
'docker stack config'. Secret contents are never printed.`,
		Example: `  berth stack config -c compose.yaml
  berth stack config -c compose.yaml -c compose.prod.yaml --env-file prod.env --stack web`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, outputYAML, outputJSON); err != nil {
				return err
			}
			stack, warnings, err := loadCompose(cmd.Context(), cmd.InOrStdin(), compose.files, compose.envFiles, compose.stack)
			// Warnings are worth reading even when the stack is refused.
			printProblems(cmd.ErrOrStderr(), "warning", warnings)
			if err != nil {
				return err
			}
			if output == outputJSON {
				return printJSON(cmd.OutOrStdout(), stack)
			}
			return printYAML(cmd.OutOrStdout(), stack)
		},
	}
	compose.register(cmd, "Compose file (repeatable, merged in order; - reads standard input)")
	formatFlag(cmd, &output, outputYAML, "Output format: yaml or json")
	_ = cmd.MarkFlagRequired("compose-file")
	return cmd
}
