package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
)

// Shell completion: cobra's generators, and the names of the cluster's objects asked
// of the daemon. Which command takes which kind of name is the table below, applied
// by walking the command tree, so that the command files hold no completion code.

// nameKind is a kind of object a command takes by name.
type nameKind string

const (
	kindService nameKind = "service"
	kindNode    nameKind = "node"
	kindStack   nameKind = "stack"
	kindSource  nameKind = "source"
	kindSecret  nameKind = "secret"
	kindConfig  nameKind = "config"
)

// nameArgs says what a command's arguments are: many names, or only the first
// argument is one. suffix follows each completed name ("=" for service scale's
// SERVICE=REPLICAS).
type nameArgs struct {
	kind   nameKind
	many   bool
	suffix string
}

// completions maps command paths, below berth, to the names they take.
// TestEveryNamedArgumentCompletes keeps it in step with the commands' usage lines.
var completions = map[string]nameArgs{
	"node demote":  {kind: kindNode, many: true},
	"node inspect": {kind: kindNode, many: true},
	"node promote": {kind: kindNode, many: true},
	"node ps":      {kind: kindNode, many: true},
	"node rm":      {kind: kindNode, many: true},
	"node update":  {kind: kindNode},

	"service inspect":  {kind: kindService, many: true},
	"service logs":     {kind: kindService},
	"service ps":       {kind: kindService, many: true},
	"service rm":       {kind: kindService, many: true},
	"service rollback": {kind: kindService},
	"service scale":    {kind: kindService, many: true, suffix: "="},
	"service update":   {kind: kindService},

	"stack deploy":   {kind: kindStack},
	"stack ps":       {kind: kindStack},
	"stack rm":       {kind: kindStack, many: true},
	"stack services": {kind: kindStack},

	"source history":  {kind: kindSource},
	"source inspect":  {kind: kindSource},
	"source remote":   {kind: kindSource},
	"source resume":   {kind: kindSource},
	"source rm":       {kind: kindSource},
	"source rollback": {kind: kindSource},
	"source suspend":  {kind: kindSource},
	"source sync":     {kind: kindSource},
	"source token":    {kind: kindSource},
	"source update":   {kind: kindSource},

	"secret inspect": {kind: kindSecret, many: true},
	"secret rm":      {kind: kindSecret, many: true},
	"config inspect": {kind: kindConfig, many: true},
	"config rm":      {kind: kindConfig, many: true},
}

// registerCompletions gives the commands of the table their completion of names.
func registerCompletions(root *cobra.Command, host *hostFlag) {
	walkCommands(root, func(cmd *cobra.Command) {
		path := strings.TrimPrefix(cmd.CommandPath(), root.Name()+" ")
		if a, ok := completions[path]; ok {
			cmd.ValidArgsFunction = a.complete(host)
		}
	})
}

// complete lists the names the daemon knows that start with what was typed, less
// those already on the command line.
func (a nameArgs) complete(host *hostFlag) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 && !a.many {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := host.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		names, err := objectNames(cmd.Context(), c, a.kind)
		if err != nil {
			cobra.CompDebugln(err.Error(), true)
			return nil, cobra.ShellCompDirectiveError
		}
		var out []string
		for _, n := range names {
			if strings.HasPrefix(n, toComplete) && !slices.Contains(args, n) {
				out = append(out, n+a.suffix)
			}
		}
		directive := cobra.ShellCompDirectiveNoFileComp
		if a.suffix != "" {
			directive |= cobra.ShellCompDirectiveNoSpace
		}
		return out, directive
	}
}

// objectNames asks the daemon for the names of one kind of object, sorted, once each
// (secrets and configs are listed per version).
func objectNames(ctx context.Context, c *api.Client, kind nameKind) ([]string, error) {
	var names []string
	var err error
	switch kind {
	case kindService:
		names, err = namesOf(c.Services(ctx, api.ServiceFilter{}, api.Query{}))(func(s *api.ServiceStatus) string { return s.Name })
	case kindNode:
		names, err = namesOf(c.Nodes(ctx, api.Query{}))(func(n *model.Node) string { return n.Hostname })
	case kindStack:
		names, err = namesOf(c.Stacks(ctx, api.Query{}))(func(s *api.StackSummary) string { return s.Name })
	case kindSource:
		names, err = namesOf(c.Sources(ctx, api.Query{}))(func(s *api.SourceInfo) string { return s.Name })
	case kindSecret:
		names, err = namesOf(c.Secrets(ctx, api.Query{}))(func(s *model.Secret) string { return s.Name })
	case kindConfig:
		names, err = namesOf(c.Configs(ctx, api.Query{}))(func(cf *model.Config) string { return cf.Name })
	default:
		return nil, fmt.Errorf("no completion of %s names", kind)
	}
	slices.Sort(names)
	return slices.Compact(names), err
}

// namesOf takes a listing call's answer and returns a function that names its items.
func namesOf[T any](items []T, _ api.QueryMeta, err error) func(name func(T) string) ([]string, error) {
	return func(name func(T) string) ([]string, error) {
		if err != nil {
			return nil, err
		}
		out := make([]string, len(items))
		for i, it := range items {
			out[i] = name(it)
		}
		return out, nil
	}
}

func newCompletionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: `Print the completion script of a shell. Commands complete the names of services,
nodes, stacks, sources, secrets and configs, asked of the daemon (-H or BERTH_HOST).`,
		Example: `  source <(berth completion bash)
  berth completion zsh > "${fpath[1]}/_berth"
  berth completion fish > ~/.config/fish/completions/berth.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.ExactArgs(1)(cmd, args); err != nil {
				return err
			}
			if !slices.Contains(cmd.ValidArgs, args[0]) {
				return fmt.Errorf("unknown shell %q: berth completes bash, zsh and fish", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			root, w := cmd.Root(), cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(w, true)
			case "zsh":
				return root.GenZshCompletion(w)
			default:
				return root.GenFishCompletion(w, true)
			}
		},
	}
}
