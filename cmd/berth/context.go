package main

import (
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"

	"github.com/berthd/berth/cli/format"

	"github.com/spf13/cobra"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/api/endpoint"
)

func newContextCommand(host *hostFlag) *cobra.Command {
	return groupCommand("context", "Manage contexts: named daemons to talk to, as 'docker context'",
		newContextCreateCommand(host),
		newContextUseCommand(host),
		newContextLsCommand(host),
		newContextInspectCommand(host),
		newContextRmCommand(host),
	)
}

func newContextCreateCommand(host *hostFlag) *cobra.Command {
	var (
		c   endpoint.Context
		dir string
	)
	cmd := &cobra.Command{
		Use:   "create NAME --host HOST [--tlscacert FILE --tlscert FILE --tlskey FILE | --cert-dir DIR]",
		Short: "Keep a daemon under a name",
		Long: `Keep a daemon to talk to under a name, in $BERTH_CONFIG (default ~/.berth). The TLS
files of a tcp:// host are kept as absolute paths, not copied: keep them where they are.`,
		Example: `  berth context create prod --host ssh://admin@manager-1
  berth context create prod-tls --host tcp://manager-1:4270 --cert-dir ~/.berth/certs/prod
  berth context use prod`,
		Args: exactlyOneContext("context create"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c.Name = args[0]
			e := &c.Endpoint
			if e.Host == "" {
				return fmt.Errorf("context create needs --host: the daemon, e.g. ssh://user@host or tcp://manager:4270")
			}
			if dir != "" {
				if e.TLSCACert != "" || e.TLSCert != "" || e.TLSKey != "" {
					return fmt.Errorf("give --cert-dir or the --tls* files, not both")
				}
				e.TLSCACert, e.TLSCert, e.TLSKey = filepath.Join(dir, endpoint.CAFile), filepath.Join(dir, endpoint.CertFile), filepath.Join(dir, endpoint.KeyFile)
			}
			for _, p := range []*string{&e.TLSCACert, &e.TLSCert, &e.TLSKey} {
				if *p == "" {
					continue
				}
				abs, err := filepath.Abs(*p)
				if err != nil {
					return err
				}
				*p = abs
			}
			// The client checks the host and its TLS files as a command would use them.
			if _, err := e.Client(); err != nil {
				return err
			}
			store, err := host.store()
			if err != nil {
				return err
			}
			if err := store.Create(c); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Context %s created ('berth context use %s' makes it the current one).\n", c.Name, c.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.Endpoint.Host, "host", "", "Daemon: unix:///path, ssh://[user@]host[:port] or tcp://MANAGER:4270")
	f.StringVar(&c.Description, "description", "", "What the context is for")
	f.StringVar(&c.Endpoint.TLSCACert, "tlscacert", "", "tcp:// hosts: the cluster's CA certificate")
	f.StringVar(&c.Endpoint.TLSCert, "tlscert", "", "tcp:// hosts: the client certificate")
	f.StringVar(&c.Endpoint.TLSKey, "tlskey", "", "tcp:// hosts: the client certificate's key")
	f.StringVar(&dir, "cert-dir", "", "tcp:// hosts: a folder of ca.pem, cert.pem and key.pem ('berth ca client-cert --out')")
	f.StringVar(&c.Endpoint.RemoteBinary, "remote-binary", "", "ssh:// hosts: the berth to run there (default: berth on the ssh session's PATH)")
	return cmd
}

func exactlyOneContext(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("%s needs the context's name; see '%s --help'", what, cmd.CommandPath())
		}
		return nil
	}
}

func newContextUseCommand(host *hostFlag) *cobra.Command {
	return &cobra.Command{
		Use:   "use NAME",
		Short: "Talk to a context's daemon from now on ('default': the local socket)",
		Args:  exactlyOneContext("context use"),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := host.store()
			if err != nil {
				return err
			}
			if err := store.Use(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Current context is now %s.\n", args[0])
			if host.getenv(endpoint.EnvHost) != "" || host.getenv(endpoint.EnvContext) != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "Warning: %s or %s is set and wins over the current context.\n", endpoint.EnvHost, endpoint.EnvContext)
			}
			return nil
		},
	}
}

// contextRow is a line of `context ls`.
type contextRow struct {
	Name        string `json:"name"`
	Current     bool   `json:"current"`
	Description string `json:"description,omitempty"`
	Host        string `json:"host"`
}

func newContextLsCommand(host *hostFlag) *cobra.Command {
	var opts listFlags
	cmd := &cobra.Command{
		Use:     "ls [-q] [--format FORMAT]",
		Aliases: []string{"list"},
		Short:   "List the contexts; the one in use is marked *",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := format.Parse(opts.format)
			if err != nil {
				return err
			}
			rows, err := contextRows(host)
			if err != nil {
				return err
			}
			return contextListing.print(cmd.OutOrStdout(), f, opts.quiet, rows)
		},
	}
	opts.register(cmd, "Print names only", "", nil)
	return cmd
}

// contextListing has the fields of `docker context ls --format`.
var contextListing = listing[contextRow]{
	id: func(r contextRow) string { return r.Name },
	cols: []format.Column{{Field: "Name", Header: "NAME"}, {Field: "Description", Header: "DESCRIPTION"},
		{Field: "Host", Header: "HOST"}, {Field: "Current", Header: "CURRENT"}},
	row: func(r contextRow) format.Row {
		return format.Row{"Name": r.Name, "Description": r.Description, "Host": r.Host, "Current": r.Current}
	},
	table: printContexts,
}

// contextRows are the default context and the stored ones, the one in use marked.
func contextRows(host *hostFlag) ([]contextRow, error) {
	_, inUse, err := host.endpoint()
	if err != nil {
		return nil, err
	}
	store, err := host.store()
	if err != nil {
		return nil, err
	}
	stored, err := store.List()
	if err != nil {
		return nil, err
	}
	rows := []contextRow{{Name: endpoint.DefaultContext, Current: inUse == "", Description: "The local socket, or " + endpoint.EnvHost, Host: defaultHost(host.getenv)}}
	for _, c := range stored {
		rows = append(rows, contextRow{Name: c.Name, Current: c.Name == inUse, Description: c.Description, Host: c.Endpoint.Host})
	}
	return rows, nil
}

// defaultHost is the default context's daemon: BERTH_HOST, else the local socket.
func defaultHost(getenv func(string) string) string {
	if h := getenv(endpoint.EnvHost); h != "" {
		return h
	}
	return api.DefaultHost
}

func printContexts(w io.Writer, rows []contextRow) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDESCRIPTION\tHOST")
	for _, r := range rows {
		name := r.Name
		if r.Current {
			name += " *"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, r.Description, r.Host)
	}
	return tw.Flush()
}

func newContextInspectCommand(host *hostFlag) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect [NAME]",
		Short: "Show a context as JSON (default: the one in use)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := host.store()
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			} else if _, name, err = host.endpoint(); err != nil {
				return err
			}
			if name == "" || name == endpoint.DefaultContext {
				return printJSON(cmd.OutOrStdout(), endpoint.Context{Name: endpoint.DefaultContext, Endpoint: endpoint.Endpoint{Host: defaultHost(host.getenv)}})
			}
			c, err := store.Get(name)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), c)
		},
	}
}

func newContextRmCommand(host *hostFlag) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [--force] NAME...",
		Aliases: []string{"remove"},
		Short:   "Remove contexts",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := host.store()
			if err != nil {
				return err
			}
			for _, name := range args {
				if err := store.Remove(name, force); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), name)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Remove the context in use too (the default is used then)")
	return cmd
}
