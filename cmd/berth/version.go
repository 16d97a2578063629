package main

import (
	"fmt"
	"io"
	"runtime"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/cli/format"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
)

// versions is `berth version --format json`.
type versions struct {
	Client *api.Version `json:"client"`
	Server *api.Version `json:"server,omitempty"`
}

func newVersionCommand(host *hostFlag) *cobra.Command {
	var tmpl string
	cmd := &cobra.Command{
		Use:   "version [--format json|TEMPLATE]",
		Short: "Show the versions of the CLI and of the daemon",
		Long: `Show the version of this berth and of the daemon it talks to, as 'docker version'
does. When the daemon cannot be reached, the CLI's part is printed, then the error
(exit 2).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := format.Parse(tmpl)
			if err != nil {
				return err
			}
			v := versions{Client: &api.Version{Version: versionString(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, Protocol: command.Version}}
			server, err := daemonVersion(cmd, host)
			v.Server = server
			w := cmd.OutOrStdout()
			switch f.Kind() {
			case format.JSON:
				if perr := printJSON(w, v); perr != nil {
					return perr
				}
				return err
			case format.Template:
				if perr := f.WriteObject(w, v); perr != nil {
					return perr
				}
				return err
			}
			printVersion(w, "Client", v.Client)
			if v.Server != nil {
				fmt.Fprintln(w)
				printVersion(w, "Server", v.Server)
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&tmpl, "format", "f", "", "Format the output: json or a Go template ({{.Server.Version}})")
	return cmd
}

// daemonVersion asks the daemon for its build.
func daemonVersion(cmd *cobra.Command, host *hostFlag) (*api.Version, error) {
	c, err := host.client()
	if err != nil {
		return nil, err
	}
	info, err := c.Info(cmd.Context())
	if err != nil {
		return nil, err
	}
	if info.Version == nil {
		return nil, fmt.Errorf("the daemon at %s does not say its version: it runs a berth older than this CLI", c.Host())
	}
	return info.Version, nil
}

func printVersion(w io.Writer, who string, v *api.Version) {
	fmt.Fprintf(w, "%s:\n", who)
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	fmt.Fprintf(tw, " Version:\t%s\n", v.Version)
	fmt.Fprintf(tw, " Go version:\t%s\n", v.GoVersion)
	fmt.Fprintf(tw, " OS/Arch:\t%s/%s\n", v.OS, v.Arch)
	if v.Protocol > 0 {
		fmt.Fprintf(tw, " Protocol:\t%d\n", v.Protocol)
	}
	tw.Flush()
}
