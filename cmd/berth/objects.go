package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/berthd/berth/cli/format"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
)

// `berth secret` and `berth config` are Docker's groups of the same names: the two
// kinds differ only in their calls and in whether the content may be shown, so one
// set of commands serves both.

// objectRow is one version of a secret or config as the commands print it; its JSON
// is the model's (a secret's without data).
type objectRow struct {
	model.Meta
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Stack   string            `json:"stack,omitempty"`
	Version uint64            `json:"version"`
	Data    []byte            `json:"data,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// objectKind is what differs between secrets and configs.
type objectKind struct {
	name    string // "secret" or "config"
	example string // a name for the help's examples
	create  func(ctx context.Context, c *api.Client, req api.ObjectCreateRequest) (*api.ObjectCreateResponse, error)
	list    func(ctx context.Context, c *api.Client) ([]objectRow, error)
	get     func(ctx context.Context, c *api.Client, ref string) (objectRow, error)
	remove  func(ctx context.Context, c *api.Client, ref string) (*api.WriteResponse, error)
}

var secretKind = objectKind{
	name:    "secret",
	example: "db_password",
	create: func(ctx context.Context, c *api.Client, req api.ObjectCreateRequest) (*api.ObjectCreateResponse, error) {
		return c.CreateSecret(ctx, req)
	},
	list: func(ctx context.Context, c *api.Client) ([]objectRow, error) {
		all, _, err := c.Secrets(ctx, api.Query{})
		return rowsOf(all, secretRow), err
	},
	get: func(ctx context.Context, c *api.Client, ref string) (objectRow, error) {
		s, err := c.Secret(ctx, ref)
		return secretRow(s), err
	},
	remove: func(ctx context.Context, c *api.Client, ref string) (*api.WriteResponse, error) {
		return c.RemoveSecret(ctx, ref)
	},
}

var configKind = objectKind{
	name:    "config",
	example: "site_conf",
	create: func(ctx context.Context, c *api.Client, req api.ObjectCreateRequest) (*api.ObjectCreateResponse, error) {
		return c.CreateConfig(ctx, req)
	},
	list: func(ctx context.Context, c *api.Client) ([]objectRow, error) {
		all, _, err := c.Configs(ctx, api.Query{})
		return rowsOf(all, configRow), err
	},
	get: func(ctx context.Context, c *api.Client, ref string) (objectRow, error) {
		cf, err := c.Config(ctx, ref)
		return configRow(cf), err
	},
	remove: func(ctx context.Context, c *api.Client, ref string) (*api.WriteResponse, error) {
		return c.RemoveConfig(ctx, ref)
	},
}

// secretRow never carries the data, whatever the server sent.
func secretRow(s *model.Secret) objectRow {
	if s == nil {
		return objectRow{}
	}
	return objectRow{Meta: s.Meta, ID: s.ID, Name: s.Name, Stack: s.Stack, Version: s.Version, Labels: s.Labels}
}

func configRow(c *model.Config) objectRow {
	if c == nil {
		return objectRow{}
	}
	return objectRow{Meta: c.Meta, ID: c.ID, Name: c.Name, Stack: c.Stack, Version: c.Version, Data: c.Data, Labels: c.Labels}
}

func rowsOf[T any](all []T, row func(T) objectRow) []objectRow {
	out := make([]objectRow, len(all))
	for i, o := range all {
		out[i] = row(o)
	}
	return out
}

func newSecretCommand(host *hostFlag) *cobra.Command {
	return newObjectCommand(host, secretKind, "Manage the cluster's secrets")
}

func newConfigCommand(host *hostFlag) *cobra.Command {
	cmd := newObjectCommand(host, configKind, "Manage the cluster's configs")
	// Before issue 19 `berth config` printed Compose files: say where that went.
	cmd.Long = "Manage the cluster's configs, as 'docker config'. The Compose printer that was\n'berth config -c FILE' is 'berth stack config -c FILE', as in Docker."
	return cmd
}

func newObjectCommand(host *hostFlag, k objectKind, short string) *cobra.Command {
	return groupCommand(k.name, short,
		newObjectCreateCommand(host, k),
		newObjectLsCommand(host, k),
		newObjectInspectCommand(host, k),
		newObjectRmCommand(host, k),
	)
}

func newObjectCreateCommand(host *hostFlag, k objectKind) *cobra.Command {
	var labels []string
	cmd := &cobra.Command{
		Use:   "create [--label KEY=VALUE]... " + strings.ToUpper(k.name) + " FILE|-",
		Short: "Create a " + k.name + " from a file or standard input",
		Long: `Create a ` + k.name + ` from a file, or from standard input with -, and print its ID, as
'docker ` + k.name + ` create' does. Where Docker refuses a name that exists, berth stores the
next version of it (a stack's ` + k.name + `s are changed in the stack's Compose file).`,
		Example: "  berth " + k.name + " create --label env=prod " + k.example + " ./" + k.example + ".txt\n" +
			"  printf 'hunter2' | berth " + k.name + " create " + k.example + " -",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.ObjectCreateRequest{Name: args[0]}
			var err error
			if req.Labels, err = parseLabels(labels); err != nil {
				return err
			}
			if req.Data, err = readObjectFile(cmd.InOrStdin(), k.name, args[1]); err != nil {
				return err
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			resp, err := k.create(cmd.Context(), c, req)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), resp.ID)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&labels, "label", "l", nil, k.name+" label (KEY=VALUE, repeatable)")
	return cmd
}

// readObjectFile reads a secret's or config's content, from standard input for -.
func readObjectFile(stdin io.Reader, kind, name string) ([]byte, error) {
	if name == stdinName {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading the %s from standard input: %w", kind, err)
		}
		return data, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		// os.PathError already names the file.
		return nil, fmt.Errorf("reading the %s: %w", kind, err)
	}
	return data, nil
}

func parseLabels(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid label %q: expected KEY=VALUE", kv)
		}
		out[k] = v
	}
	return out, nil
}

func newObjectLsCommand(host *hostFlag, k objectKind) *cobra.Command {
	var opts listFlags
	cmd := &cobra.Command{
		Use:     "ls [-q] [--format FORMAT]",
		Aliases: []string{"list"},
		Short:   "List the " + k.name + "s",
		Long: `List the cluster's ` + k.name + `s, one line per name with its latest version. VERSION
counts the contents the name has had; STACK is the stack that deploys it, empty for
one made with 'berth ` + k.name + ` create'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runListing(cmd, host, opts, objectListing(opts.noTrunc), func(ctx context.Context, c *api.Client) ([]objectRow, error) {
				all, err := k.list(ctx, c)
				return latestVersions(all), err
			})
		},
	}
	opts.register(cmd, "Print IDs only", "Print whole IDs", nil)
	return cmd
}

// latestVersions keeps the last version of each name from a listing sorted by name
// then version.
func latestVersions(all []objectRow) []objectRow {
	out := make([]objectRow, 0, len(all))
	for _, o := range all {
		if n := len(out); n > 0 && out[n-1].Name == o.Name {
			out[n-1] = o
			continue
		}
		out = append(out, o)
	}
	return out
}

// objectListing is `secret ls` and `config ls`: Docker's ID and NAME, and berth's
// VERSION and STACK where Docker shows times berth does not keep.
func objectListing(noTrunc bool) listing[objectRow] {
	return listing[objectRow]{
		id: func(o objectRow) string { return shortID(o.ID, noTrunc) },
		cols: []format.Column{{Field: "ID", Header: "ID"}, {Field: "Name", Header: "NAME"},
			{Field: "Version", Header: "VERSION"}, {Field: "Stack", Header: "STACK"}},
		row: func(o objectRow) format.Row {
			return format.Row{"ID": shortID(o.ID, noTrunc), "Name": o.Name, "Version": o.Version, "Stack": o.Stack}
		},
		table: func(w io.Writer, all []objectRow) error { return printObjects(w, all, noTrunc) },
	}
}

func printObjects(w io.Writer, all []objectRow, noTrunc bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tVERSION\tSTACK")
	for _, o := range all {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", shortID(o.ID, noTrunc), o.Name, o.Version, o.Stack)
	}
	return tw.Flush()
}

func newObjectInspectCommand(host *hostFlag, k objectKind) *cobra.Command {
	var (
		format string
		pretty bool
	)
	long := `Show ` + k.name + `s (by name, which is the latest version, ID or ID prefix) as a JSON
array, like 'docker ` + k.name + ` inspect', or in a human-readable form with --pretty.`
	if k.name == secretKind.name {
		long += ` A secret's content is never shown.`
	} else {
		long += ` --pretty shows the content too.`
	}
	cmd := &cobra.Command{
		Use:   "inspect [--pretty] [-f FORMAT] " + strings.ToUpper(k.name) + "...",
		Short: "Show " + k.name + "s in detail",
		Long:  long,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInspect(cmd, host, args, format, pretty,
				func(ctx context.Context, c *api.Client, ref string) (objectRow, error) { return k.get(ctx, c, ref) },
				printObjectPretty)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format the output: json (the default) or a Go template over each "+k.name)
	cmd.Flags().BoolVar(&pretty, "pretty", false, "Human-readable output")
	return cmd
}

func printObjectPretty(w io.Writer, o objectRow) {
	fmt.Fprintf(w, "ID:\t\t%s\n", o.ID)
	fmt.Fprintf(w, "Name:\t\t%s\n", o.Name)
	fmt.Fprintf(w, "Version:\t%d\n", o.Version)
	if o.Stack != "" {
		fmt.Fprintf(w, "Stack:\t\t%s\n", o.Stack)
	}
	if len(o.Labels) > 0 {
		fmt.Fprintln(w, "Labels:")
		for _, k := range sortedKeys(o.Labels) {
			fmt.Fprintf(w, " - %s=%s\n", k, o.Labels[k])
		}
	}
	if o.Data != nil {
		fmt.Fprintf(w, "Data:\n%s\n", o.Data)
	}
}

func newObjectRmCommand(host *hostFlag, k objectKind) *cobra.Command {
	return &cobra.Command{
		Use:     "rm " + strings.ToUpper(k.name) + "...",
		Aliases: []string{"remove"},
		Short:   "Remove " + k.name + "s",
		Long: `Remove ` + k.name + `s, every version of each, as 'docker ` + k.name + ` rm'. A ` + k.name + ` a service
uses is refused: remove it from the service (or its stack) first.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := host.client()
			if err != nil {
				return err
			}
			var errs []error
			for _, ref := range args {
				if _, err := k.remove(cmd.Context(), c, ref); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), ref)
			}
			return errors.Join(errs...)
		},
	}
}
