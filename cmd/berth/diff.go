package main

import (
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/applier"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/api/plantext"
	"github.com/berthd/berth/spec"
)

func newDiffCommand(host *hostFlag) *cobra.Command {
	var (
		compose  composeFlags
		against  []string
		repo     repoFlags
		from, to string
		source   string
		rev      string
		output   string
	)
	cmd := &cobra.Command{
		Use:   "diff (--source NAME [--rev REV] | -c FILE... [--stack NAME] [--against OLD...] | --repo REPO --from REV [--to REV] [--path DIR])",
		Short: "Show what would change: in the cluster, or between two versions of stacks",
		Long: `Show every service and resource to add, change or remove, field by field, with what
a change does to running tasks.

Against the live cluster (a dry run: nothing changes), with a placement preview: for
each new or replaced task, the node it would land on, and for each task that cannot
be placed, the scheduler's reason:
  --source NAME [--rev REV]   what syncing a GitOps source (at a revision) would do
  -c FILE... [--stack NAME]   what 'berth stack deploy' of the files would do

Offline, between two versions:
  -c NEW... --against OLD...  two versions of one stack's Compose files
  --repo REPO --from REV      the stacks of two Git revisions

Exit codes, as diff(1), Argo CD and Flux: 0 no differences, 1 differences, 2 error.`,
		Example: `  berth diff --source infra
  berth diff --source infra --rev 4f2a9c1 -o json
  berth diff -c compose.yaml --stack web
  berth diff --repo . --from HEAD~1
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
			if rev != "" && source == "" {
				return errors.New("--rev needs --source NAME: the source whose revision to plan")
			}
			switch {
			case source != "" && (len(compose.files) > 0 || repo.repo != ""):
				return errors.New("--source, -c and --repo are mutually exclusive: plan a source, compose files or revisions")
			case len(compose.files) > 0 && repo.repo != "":
				return errors.New("-c and --repo are mutually exclusive: compare either compose files or revisions")
			case len(compose.files) > 0 && (from != "" || cmd.Flags().Changed("to") || cmd.Flags().Changed("path")):
				return errors.New("--from, --to and --path need --repo")
			case source != "":
				return livePlan(cmd, host, &api.PlanRequest{Source: source, Revision: rev}, output)
			case len(compose.files) > 0 && len(against) == 0:
				stack, err := loadComposeStack(cmd, compose)
				if err != nil {
					return err
				}
				return livePlan(cmd, host, &api.PlanRequest{Stacks: []*api.StackDeployRequest{api.NewStackDeployRequest(stack, false)}}, output)
			case len(compose.files) > 0:
				if slices.Contains(compose.files, stdinName) && slices.Contains(against, stdinName) {
					return errors.New("standard input can be read only once: give -c - or --against -, not both")
				}
				newStack, err := loadComposeStack(cmd, compose)
				if err != nil {
					return fmt.Errorf("new version: %w", err)
				}
				oldStack, _, err := loadCompose(ctx, cmd.InOrStdin(), against, compose.envFiles, newStack.Name)
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
				return errors.New("nothing to compare: use --source NAME, -c FILE, -c NEW --against OLD, or --repo REPO --from REV")
			}

			if output == outputJSON {
				if err := printDiffJSON(cmd.OutOrStdout(), diffs); err != nil {
					return err
				}
			} else {
				plantext.Diff(cmd.OutOrStdout(), diffs)
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
	cmd.Flags().StringVar(&source, "source", "", "Plan a sync of this GitOps source against the live cluster")
	cmd.Flags().StringVar(&rev, "rev", "", "With --source: the revision to plan (a branch, tag or commit) instead of the source's current one")
	formatFlag(cmd, &output, outputText, "Output format: text or json")
	return cmd
}

// loadComposeStack loads -c's files as one stack, named by --stack or after the
// first file's folder.
func loadComposeStack(cmd *cobra.Command, compose composeFlags) (*spec.Stack, error) {
	name := compose.stack
	if name == "" {
		dir, err := composeDir(compose.files[0])
		if err != nil {
			return nil, err
		}
		name = stackNameFromDir(dir)
	}
	stack, warnings, err := loadCompose(cmd.Context(), cmd.InOrStdin(), compose.files, compose.envFiles, name)
	printProblems(cmd.ErrOrStderr(), "warning", warnings)
	return stack, err
}

// livePlan asks the cluster for a dry run and prints it: the diff, then where tasks
// would land. Differences make the command exit 1.
func livePlan(cmd *cobra.Command, host *hostFlag, req *api.PlanRequest, output string) error {
	c, err := host.client()
	if err != nil {
		return err
	}
	resp, err := c.Plan(cmd.Context(), req)
	if err != nil {
		return err
	}
	printProblems(cmd.ErrOrStderr(), "warning", resp.Warnings)
	if output == outputJSON {
		err = printPlanJSON(cmd.OutOrStdout(), resp)
	} else {
		plantext.Plan(cmd.OutOrStdout(), resp, maxPlacementLines)
	}
	if err != nil {
		return err
	}
	if len(resp.Diffs) > 0 {
		return errDifferences
	}
	return nil
}
