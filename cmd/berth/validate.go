package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/applier"
	"github.com/berthd/berth/cluster/api/plantext"
	"github.com/berthd/berth/spec"
)

func newValidateCommand() *cobra.Command {
	var (
		compose composeFlags
		repo    repoFlags
		rev     string
		quiet   bool
	)
	cmd := &cobra.Command{
		Use:   "validate (-c FILE... | --repo REPO [--rev REV] [--path DIR])",
		Short: "Check stacks without applying them",
		Long: `Check one stack given by its Compose files, or every stack of a Git revision, and list
every problem at once. Exit code 0 when valid (warnings are printed on standard error),
2 when not, with one 'error:' line per problem.`,
		Example: `  berth validate -c compose.yaml
  berth validate --repo . --path examples
  berth validate --repo https://git.example.com/ops/stacks.git --rev main`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			switch {
			case len(compose.files) > 0 && repo.repo != "":
				return errors.New("-c and --repo are mutually exclusive: validate either compose files or a repository")
			case len(compose.files) > 0:
				if cmd.Flags().Changed("rev") || cmd.Flags().Changed("path") {
					return errors.New("--rev and --path need --repo")
				}
				stack, warnings, err := loadCompose(ctx, cmd.InOrStdin(), compose.files, compose.envFiles, compose.stack)
				// Warnings are worth reading even when the stack is refused.
				printProblems(stderr, "warning", warnings)
				if err != nil {
					return err
				}
				if !quiet {
					fmt.Fprintf(stdout, "stack %s: valid (%s)\n", stack.Name, stackSummary(stack))
				}
				return nil
			case repo.repo != "":
				if len(compose.envFiles) > 0 || compose.stack != "" {
					return errors.New("--env-file and --stack need -c: stacks of a repository are named by its layout")
				}
				r, err := applier.OpenRepository(ctx, repo.repo)
				if err != nil {
					return err
				}
				defer r.Close()
				loaded, err := loadRevision(ctx, r, rev, repoPath(repo.path), nil)
				if err != nil {
					return err
				}
				printProblems(stderr, "warning", loaded.Warnings)
				if len(loaded.Stacks) == 0 {
					return fmt.Errorf("no stacks found in %s at %s: expected %s/berth.yaml or folders holding a compose.yaml", repo.repo, loaded, repoPath(repo.path))
				}
				if !quiet {
					for _, s := range sortedStacks(loaded.Stacks) {
						fmt.Fprintf(stdout, "stack %s: valid (%s)\n", s.Name, stackSummary(s))
					}
					fmt.Fprintf(stdout, "%s valid at %s\n", plantext.Plural(len(loaded.Stacks), "stack", "stacks"), loaded)
				}
				return nil
			default:
				return errors.New("nothing to validate: use -c FILE or --repo REPO")
			}
		},
	}
	compose.register(cmd, "Compose file of the stack to validate (repeatable, merged in order; - reads standard input)")
	repo.register(cmd)
	cmd.Flags().StringVar(&rev, "rev", "HEAD", "Revision of --repo to validate: a branch, tag or commit")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Print nothing but warnings and errors")
	return cmd
}

// stackSummary says what a stack holds, e.g. "2 services, 1 network, 1 secret".
func stackSummary(s *spec.Stack) string {
	parts := []string{plantext.Plural(len(s.Services), "service", "services")}
	for _, c := range []struct {
		n             int
		single, multi string
	}{
		{len(s.Networks), "network", "networks"},
		{len(s.Volumes), "volume", "volumes"},
		{len(s.Secrets), "secret", "secrets"},
		{len(s.Configs), "config", "configs"},
	} {
		if c.n > 0 {
			parts = append(parts, plantext.Plural(c.n, c.single, c.multi))
		}
	}
	return joinComma(parts)
}
