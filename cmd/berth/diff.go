package main

import (
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/applier"
	"github.com/berthd/berth/spec"
)

func newDiffCommand() *cobra.Command {
	var (
		compose  composeFlags
		against  []string
		repo     repoFlags
		from, to string
		output   string
	)
	cmd := &cobra.Command{
		Use:   "diff (--repo REPO --from REV [--to REV] [--path DIR] | -c NEW... --against OLD... [--stack NAME])",
		Short: "Show what would change between two versions of stacks",
		Long: `Compare the stacks of two Git revisions, or two versions of one stack's Compose files,
and show every service and resource to add, change or remove, field by field, with
what a change does to running tasks.

Exit codes, as diff(1), Argo CD and Flux: 0 no differences, 1 differences, 2 error.`,
		Example: `  berth diff --repo . --from HEAD~1
  berth diff --repo . --from v1.2.0 --to main --path stacks -o json
  berth diff -c compose.yaml --against previous/compose.yaml --stack web`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, outputText, outputJSON); err != nil {
				return err
			}
			ctx := cmd.Context()
			stderr := cmd.ErrOrStderr()
			var diffs []*spec.StackDiff
			switch {
			case len(compose.files) > 0 && repo.repo != "":
				return errors.New("-c and --repo are mutually exclusive: compare either compose files or revisions")
			case len(compose.files) > 0:
				if len(against) == 0 {
					return errors.New("-c needs --against OLD: the compose files to compare with")
				}
				if from != "" || cmd.Flags().Changed("to") || cmd.Flags().Changed("path") {
					return errors.New("--from, --to and --path need --repo")
				}
				if slices.Contains(compose.files, stdinName) && slices.Contains(against, stdinName) {
					return errors.New("standard input can be read only once: give -c - or --against -, not both")
				}
				stackName := compose.stack
				if stackName == "" {
					// Both versions are one stack: name them after the new files, whatever
					// folder the old ones sit in.
					dir, err := composeDir(compose.files[0])
					if err != nil {
						return err
					}
					stackName = stackNameFromDir(dir)
				}
				newStack, warnings, err := loadCompose(ctx, cmd.InOrStdin(), compose.files, compose.envFiles, stackName)
				printProblems(stderr, "warning", warnings)
				if err != nil {
					return fmt.Errorf("new version: %w", err)
				}
				oldStack, _, err := loadCompose(ctx, cmd.InOrStdin(), against, compose.envFiles, stackName)
				if err != nil {
					return fmt.Errorf("old version (--against): %w", err)
				}
				if d := spec.Diff(oldStack, newStack); !d.Empty() {
					diffs = append(diffs, d)
				}
			case repo.repo != "":
				if len(against) > 0 || len(compose.envFiles) > 0 || compose.stack != "" {
					return errors.New("--against, --env-file and --stack need -c")
				}
				if from == "" {
					return errors.New("--repo needs --from REV: the revision to compare with")
				}
				r, err := applier.OpenRepository(ctx, repo.repo)
				if err != nil {
					return err
				}
				defer r.Close()
				dir := repoPath(repo.path)
				cache := spec.NewCache()
				oldRev, err := loadRevision(ctx, r, from, dir, cache)
				if err != nil {
					return err
				}
				newRev, err := loadRevision(ctx, r, to, dir, cache)
				if err != nil {
					return err
				}
				printProblems(stderr, "warning", newRev.Warnings)
				diffs = spec.DiffStacks(oldRev.Stacks, newRev.Stacks)
			default:
				return errors.New("nothing to compare: use --repo REPO --from REV, or -c NEW --against OLD")
			}

			if output == outputJSON {
				if err := printDiffJSON(cmd.OutOrStdout(), diffs); err != nil {
					return err
				}
			} else {
				printDiff(cmd.OutOrStdout(), diffs)
			}
			if len(diffs) > 0 {
				return errDifferences
			}
			return nil
		},
	}
	compose.register(cmd, "Compose file of the new version (repeatable, merged in order; - reads standard input)")
	cmd.Flags().StringArrayVar(&against, "against", nil, "Compose file of the old version to compare -c with (repeatable, merged in order)")
	repo.register(cmd)
	cmd.Flags().StringVar(&from, "from", "", "Old revision of --repo: a branch, tag or commit")
	cmd.Flags().StringVar(&to, "to", "HEAD", "New revision of --repo")
	cmd.Flags().StringVarP(&output, "output", "o", outputText, "Output format: text or json")
	return cmd
}
