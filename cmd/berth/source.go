package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berthd/berth/cli/format"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

func newSourceCommand(host *hostFlag) *cobra.Command {
	return groupCommand("source", "Manage GitOps sources: where stacks come from",
		newSourceAddCommand(host),
		newSourceUpdateCommand(host),
		newSourceLsCommand(host),
		newSourceInspectCommand(host),
		newSourceHistoryCommand(host),
		newSourceSyncCommand(host),
		newSourceSuspendCommand(host, true),
		newSourceSuspendCommand(host, false),
		newSourceRollbackCommand(host),
		newSourceRmCommand(host),
		newSourceTokenCommand(host),
		newSourceRemoteCommand(host),
	)
}

func exactlyOneName(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("%s needs the source's name; see '%s --help'", what, cmd.CommandPath())
		}
		return nil
	}
}

func newSourceAddCommand(host *hostFlag) *cobra.Command {
	var (
		src                                   model.Source
		url, dir                              string
		push, noPrune                         bool
		interval                              time.Duration
		tokenFile, sshKey, knownHosts, whFile string
		caFile                                string
		ageKey                                ageKeyFlags
		nf                                    notifyFlags
	)
	cmd := &cobra.Command{
		Use:   "add NAME (--url URL | --dir PATH | --push) [flags]",
		Short: "Add a source: a Git repository or a folder whose stacks the cluster follows",
		Long: `Add a GitOps source. The leading manager syncs it: every stack found at --path (a
berth.yaml listing them, or one folder per stack holding compose.yaml) is applied, a
whole revision in one raft command or not at all. Stacks the source created and its
revision no longer has are removed, unless --no-prune.

  --url    a Git remote, fetched every --interval and on webhooks (POST
           /v1/hooks/NAME on a manager's port, signed with --webhook-secret-file);
  --dir    a folder on the managers, applied whenever its files change, and
           checked for drift every --interval;
  --push   the cluster itself is the remote: 'git push' to it deploys.

Credentials are stored as cluster secrets and never shown again.`,
		Example: `  berth source add infra --url https://git.example.com/ops/stacks.git --branch main --path stacks --token-file token
  berth source add infra --url git@git.example.com:ops/stacks.git --ssh-key id_ed25519 --known-hosts known_hosts
  berth source add infra --url https://git.internal/ops/stacks.git --ca-file internal-ca.pem
  berth source add local --dir /srv/stacks
  berth source add infra --url https://github.com/ops/stacks.git --notify slack=https://hooks.slack.com/services/T0/B0/XXX --commit-status github --commit-status-token-file gh-token`,
		Args: exactlyOneName("source add"),
		RunE: func(cmd *cobra.Command, args []string) error {
			src.Name = args[0]
			kinds := 0
			for _, set := range []bool{url != "", dir != "", push} {
				if set {
					kinds++
				}
			}
			if kinds != 1 {
				return errors.New("give exactly one of --url URL, --dir PATH or --push")
			}
			req := &api.SourceAddRequest{Source: &src}
			switch {
			case url != "":
				if err := model.CheckGitURL(url); err != nil {
					return err
				}
				src.Kind, src.URL = model.SourceGitPull, url
				src.Interval = spec.Duration(interval)
			case dir != "":
				src.Kind, src.URL = model.SourceDir, dir
				src.Interval = spec.Duration(interval)
			default:
				src.Kind = model.SourceGitPush
			}
			if src.Kind != model.SourceGitPull && (tokenFile != "" || sshKey != "" || knownHosts != "" || whFile != "" || caFile != "") {
				return errors.New("--token-file, --ssh-key, --known-hosts, --ca-file and --webhook-secret-file are for --url sources")
			}
			if src.Kind == model.SourceGitPush && cmd.Flags().Changed("interval") {
				return errors.New("--interval is for --url and --dir sources: a push source syncs on every push")
			}
			src.Prune = !noPrune
			var err error
			if caFile != "" {
				if src.CA, err = readCAFile(caFile); err != nil {
					return err
				}
			}
			cred, err := readCredentials(tokenFile, sshKey, knownHosts)
			if err != nil {
				return err
			}
			req.Credentials = cred
			if req.AgeKey, err = ageKey.read(); err != nil {
				return err
			}
			if err := nf.addTo(req); err != nil {
				return err
			}
			if whFile != "" {
				if req.WebhookSecret, err = readSecretFile("--webhook-secret-file", whFile); err != nil {
					return err
				}
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			if _, err := c.AddSource(cmd.Context(), req); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Source %s added; the leading manager syncs it now ('berth source ls' shows how it went).\n", src.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&url, "url", "", "Git remote to follow (https://, http://, ssh://, git@host:path, git://, file://)")
	f.StringVar(&dir, "dir", "", "Folder on the managers to follow (absolute path)")
	f.BoolVar(&push, "push", false, "The cluster is the remote: stacks arrive by 'git push'")
	f.StringVar(&src.Branch, "branch", "main", "Branch to follow")
	f.StringVar(&src.Path, "path", "", "Folder inside the repository that holds the stacks")
	f.DurationVar(&interval, "interval", time.Minute, "How often to check the remote (at least 10s), or a folder for drift (0: webhooks, changes and 'source sync' only)")
	f.StringVar(&tokenFile, "token-file", "", "File holding an HTTPS access token")
	f.StringVar(&sshKey, "ssh-key", "", "File holding an SSH private key (needs --known-hosts)")
	f.StringVar(&knownHosts, "known-hosts", "", "known_hosts file holding the Git server's host key")
	f.StringVar(&caFile, "ca-file", "", "PEM file of the CA that signed an https:// Git server's certificate, when the system does not trust it")
	f.StringVar(&whFile, "webhook-secret-file", "", "File holding the secret that signs webhooks")
	f.BoolVar(&noPrune, "no-prune", false, "Keep (and report) what the source created and its revision no longer has")
	f.BoolVar(&src.SelfHeal, "self-heal", false, "Revert changes made outside Git at the next sync")
	ageKey.register(f, false)
	nf.register(f, false)
	return cmd
}

// readSecretFile reads a credential file, trimmed of the newline editors add.
func readSecretFile(flag, name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	b = []byte(strings.TrimSpace(string(b)))
	if len(b) == 0 {
		return nil, fmt.Errorf("%s: %s is empty", flag, name)
	}
	return b, nil
}

// readCAFile reads the CA certificates of a Git server, as PEM.
func readCAFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("--ca-file: %w", err)
	}
	return string(b), nil
}

func newSourceUpdateCommand(host *hostFlag) *cobra.Command {
	var (
		u                                     sourceUpdateFlags
		tokenFile, sshKey, knownHosts, caFile string
		noCA                                  bool
		ageKey                                ageKeyFlags
		nf                                    notifyFlags
	)
	cmd := &cobra.Command{
		Use:   "update NAME [flags]",
		Short: "Change a source's branch, path, interval, credentials, prune or self-heal",
		Long: `Change a source's settings without removing it: only the flags given change. The
leading manager syncs the source with them at once. The interval of a --url source
is at least 10s (0: webhooks and 'source sync' only). New credentials replace the old
ones (a new version of the source's credentials secret); --ca-file '' or --no-ca
removes a CA given earlier.`,
		Example: `  berth source update infra --branch release --path stacks/prod
  berth source update infra --interval 5m --self-heal
  berth source update infra --token-file new-token
  berth source update infra --ca-file internal-ca.pem
  berth source update infra --no-ca
  berth source update infra --notify https://hooks.example.com/berth --notify-rm slack=https://hooks.slack.com/services/T0/B0/XXX`,
		Args: exactlyOneName("source update"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			req := u.request(f.Changed)
			var err error
			if f.Changed("ca-file") || noCA {
				if noCA && caFile != "" {
					return errors.New("give --ca-file FILE or --no-ca, not both")
				}
				ca := ""
				if caFile != "" {
					if ca, err = readCAFile(caFile); err != nil {
						return err
					}
				}
				req.CA = &ca
			}
			if req.Credentials, err = readCredentials(tokenFile, sshKey, knownHosts); err != nil {
				return err
			}
			if err := ageKey.setUpdate(req); err != nil {
				return err
			}
			if req.Notify, err = nf.update(); err != nil {
				return err
			}
			if !req.ChangesSettings() {
				return fmt.Errorf("nothing to update: give at least one flag; see '%s --help'", cmd.CommandPath())
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			if _, err := c.UpdateSource(cmd.Context(), args[0], req); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Source %s updated; the leading manager syncs it now ('berth source ls' shows how it went).\n", args[0])
			return nil
		},
	}
	f := cmd.Flags()
	u.register(f)
	f.StringVar(&tokenFile, "token-file", "", "File holding an HTTPS access token (replaces the credentials)")
	f.StringVar(&sshKey, "ssh-key", "", "File holding an SSH private key (needs --known-hosts; replaces the credentials)")
	f.StringVar(&knownHosts, "known-hosts", "", "known_hosts file holding the Git server's host key")
	f.StringVar(&caFile, "ca-file", "", "PEM file of the CA that signed the https:// Git server's certificate ('' removes it)")
	f.BoolVar(&noCA, "no-ca", false, "Remove the CA given earlier: trust the system's CAs only")
	ageKey.register(f, true)
	nf.register(f, true)
	return cmd
}

func readCredentials(tokenFile, sshKey, knownHosts string) (*api.SourceCredentials, error) {
	if tokenFile == "" && sshKey == "" && knownHosts == "" {
		return nil, nil
	}
	var cred api.SourceCredentials
	if tokenFile != "" {
		tok, err := readSecretFile("--token-file", tokenFile)
		if err != nil {
			return nil, err
		}
		cred.Token = string(tok)
	}
	if sshKey != "" {
		key, err := os.ReadFile(sshKey)
		if err != nil {
			return nil, fmt.Errorf("--ssh-key: %w", err)
		}
		cred.SSHKey = key
	}
	if knownHosts != "" {
		kh, err := os.ReadFile(knownHosts)
		if err != nil {
			return nil, fmt.Errorf("--known-hosts: %w", err)
		}
		cred.KnownHosts = kh
	}
	return &cred, nil
}

func newSourceLsCommand(host *hostFlag) *cobra.Command {
	var opts listFlags
	cmd := &cobra.Command{
		Use:     "ls [-q] [--format FORMAT]",
		Aliases: []string{"list"},
		Short:   "List the sources and how their last syncs went",
		Long: `List the sources. STATUS is Synced, Progressing (applied, services still
converging), Degraded (applied, but some services cannot run: a replica no node
qualifies for, an image that cannot be pulled, a task that keeps failing; MESSAGE
says why), OutOfSync, Failed (the last good revision stays applied; MESSAGE says
why), Suspended or Pending (not synced yet).`,
		Example: `  berth source ls --format '{{.Name}} {{.Status}} {{.Revision}}'`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runListing(cmd, host, opts, sourceListing(time.Now()), func(ctx context.Context, c *api.Client) ([]*api.SourceInfo, error) {
				srcs, _, err := c.Sources(ctx, api.Query{})
				return srcs, err
			})
		},
	}
	opts.register(cmd, "Print names only", "", nil)
	return cmd
}

func printSources(w io.Writer, srcs []*api.SourceInfo, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tREVISION\tSTATUS\tLAST SYNC\tMESSAGE")
	for _, s := range srcs {
		r := sourceFields(s, now)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r["Name"], r["Kind"], r["Revision"], r["Status"], r["LastSync"], r["Message"])
	}
	return tw.Flush()
}

// sourceFields is a source as `source ls` shows it: the revision applied (pinned or
// not), when it last synced, and the message cut to a line.
func sourceFields(s *api.SourceInfo, now time.Time) format.Row {
	last := "never"
	if n := len(s.History); n > 0 {
		last = units.HumanDuration(now.Sub(s.History[n-1].Time)) + " ago"
	}
	rev := shortRevision(s.LastAppliedRevision)
	if s.PinnedRevision != "" {
		rev += " (pinned)"
	}
	msg := s.Message
	if s.Reason != "" {
		msg = s.Reason
	}
	return format.Row{"Name": s.Name, "Kind": string(s.Kind), "Revision": rev, "Status": s.Display,
		"LastSync": last, "Message": oneLine(msg, 80)}
}

// shortRevision is a commit's short SHA, as git shows it; other revisions as they are.
func shortRevision(rev string) string {
	if len(rev) == 40 || len(rev) == 64 {
		return rev[:7]
	}
	if rev == "" {
		return "-"
	}
	return rev
}

// oneLine is the first line of s, cut to max runes.
func oneLine(s string, max int) string {
	s, _, cut := strings.Cut(s, "\n")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	if cut {
		return s + " …"
	}
	return s
}

func newSourceInspectCommand(host *hostFlag) *cobra.Command {
	var tmpl string
	cmd := newSourceShowCommand(host, "inspect", "Show a source in full, as JSON (never its credentials; its CA as subject and fingerprint)",
		func(w io.Writer, src *api.SourceInfo) error {
			f, err := format.Parse(tmpl)
			if err != nil {
				return err
			}
			src = withCASummary(src)
			if f.Kind() == format.Default || f.Kind() == format.JSON {
				return printJSON(w, src)
			}
			return f.WriteObject(w, src)
		})
	cmd.Flags().StringVarP(&tmpl, "format", "f", "", "Format the output: json (the default) or a Go template over the source")
	return cmd
}

func newSourceHistoryCommand(host *hostFlag) *cobra.Command {
	return newSourceShowCommand(host, "history", "Show a source's last syncs, newest first",
		func(w io.Writer, src *api.SourceInfo) error { printHistory(w, src.History); return nil })
}

// newSourceShowCommand is a command that reads one source and prints it.
func newSourceShowCommand(host *hostFlag, verb, short string, show func(io.Writer, *api.SourceInfo) error) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Args:  exactlyOneName("source " + verb),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := host.client()
			if err != nil {
				return err
			}
			src, _, err := c.Source(cmd.Context(), args[0], api.Query{})
			if err != nil {
				return err
			}
			return show(cmd.OutOrStdout(), src)
		},
	}
}

func printHistory(w io.Writer, history []model.SyncRecord) {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tTIME\tRESULT\tPLAN\tMESSAGE")
	for i := len(history) - 1; i >= 0; i-- {
		r := history[i]
		plan := fmt.Sprintf("+%d ~%d -%d", r.Plan.Added, r.Plan.Changed, r.Plan.Removed)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", shortRevision(r.Revision), r.Time.Local().Format(time.DateTime), r.Result, plan, oneLine(r.Message, 80))
	}
	_ = tw.Flush()
}

func newSourceSyncCommand(host *hostFlag) *cobra.Command {
	var (
		detach  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "sync NAME",
		Short: "Sync a source now (and end a rollback's pin)",
		Long: `Ask the leading manager to sync the source now: fetch its branch (or read its folder)
and apply what changed. A revision pinned by 'source rollback' is released. Without
--detach, wait for the sync's result and print it; exit 2 when it failed, as for
any error.`,
		Args: exactlyOneName("source sync"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := host.client()
			if err != nil {
				return err
			}
			unpin := ""
			return requestSync(cmd.Context(), c, cmd.OutOrStdout(), args[0], &api.SourceUpdateRequest{RequestSync: true, Pin: &unpin}, detach, timeout)
		},
	}
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "Return once the sync is requested")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Minute, "How long to wait for the sync")
	return cmd
}

// requestSync sends req and, unless detached, waits until the leader answered it.
func requestSync(ctx context.Context, c *api.Client, w io.Writer, name string, req *api.SourceUpdateRequest, detach bool, timeout time.Duration) error {
	if _, err := c.UpdateSource(ctx, name, req); err != nil {
		return err
	}
	if detach {
		fmt.Fprintf(w, "Sync of %s requested.\n", name)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var q api.Query
	for {
		src, meta, err := c.Source(ctx, name, q)
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return fmt.Errorf("source %s: no sync result within %s ('berth source ls' shows it once the leader syncs)", name, timeout)
		}
		if err != nil {
			return err
		}
		if src.AnsweredRequests >= src.SyncRequests && len(src.History) > 0 {
			r := src.History[len(src.History)-1]
			switch r.Result {
			case model.SyncApplied:
				fmt.Fprintf(w, "Source %s: revision %s applied (%d added, %d changed, %d removed services).\n", name, shortRevision(r.Revision), r.Plan.Added, r.Plan.Changed, r.Plan.Removed)
			case model.SyncUnchanged:
				fmt.Fprintf(w, "Source %s: revision %s, nothing to change.\n", name, shortRevision(r.Revision))
			default:
				return fmt.Errorf("source %s: sync %s: %s", name, r.Result, r.Message)
			}
			return nil
		}
		q = api.Query{Index: meta.Index, Wait: 30 * time.Second}
	}
}

func newSourceSuspendCommand(host *hostFlag, suspend bool) *cobra.Command {
	use, short := "suspend NAME", "Stop syncing a source; what it applied keeps running"
	if !suspend {
		use, short = "resume NAME", "Sync a suspended source again (and end a rollback's pin)"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactlyOneName(strings.Fields(use)[0]),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := host.client()
			if err != nil {
				return err
			}
			req := &api.SourceUpdateRequest{Suspended: &suspend}
			if !suspend {
				req.RequestSync = true
			}
			if _, err := c.UpdateSource(cmd.Context(), args[0], req); err != nil {
				return err
			}
			verb := "suspended"
			if !suspend {
				verb = "resumed"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Source %s %s.\n", args[0], verb)
			return nil
		},
	}
}

func newSourceRollbackCommand(host *hostFlag) *cobra.Command {
	var (
		to      string
		detach  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "rollback NAME --to REV",
		Short: "Apply an earlier revision and hold it until the next sync or resume",
		Long: `Apply revision REV (a commit SHA, short SHA, tag or branch of the source's repository)
and pin it: later commits are not applied until 'berth source sync NAME' or 'berth
source resume NAME'.`,
		Example: `  berth source history infra
  berth source rollback infra --to 3f2a9c1`,
		Args: exactlyOneName("source rollback"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return errors.New("source rollback needs --to REV: the revision to go back to (see 'berth source history')")
			}
			c, err := host.client()
			if err != nil {
				return err
			}
			return requestSync(cmd.Context(), c, cmd.OutOrStdout(), args[0], &api.SourceUpdateRequest{RequestSync: true, Pin: &to}, detach, timeout)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "Revision to apply")
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "Return once the rollback is requested")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Minute, "How long to wait for the sync")
	return cmd
}

func newSourceRmCommand(host *hostFlag) *cobra.Command {
	var prune bool
	cmd := &cobra.Command{
		Use:     "rm [--prune] NAME",
		Aliases: []string{"remove"},
		Short:   "Remove a source; its stacks stay running unless --prune",
		Args:    exactlyOneName("source rm"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := host.client()
			if err != nil {
				return err
			}
			if _, err := c.RemoveSource(cmd.Context(), args[0], prune); err != nil {
				return err
			}
			if prune {
				fmt.Fprintf(cmd.OutOrStdout(), "Source %s removed, with its stacks.\n", args[0])
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "Source %s removed; its stacks keep running ('berth stack rm' removes them).\n", args[0])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&prune, "prune", false, "Remove the source's stacks too")
	return cmd
}

func newSourceTokenCommand(host *hostFlag) *cobra.Command {
	var rotate bool
	cmd := &cobra.Command{
		Use:   "token [--rotate] NAME",
		Short: "Print a push source's remote URL and token",
		Long: `Print the Git remote of a push source (source add --push) on this manager and the
token that authenticates pushes and fetches (the password; any user name). --rotate
makes a new token: the old one stops working at once.`,
		Args: exactlyOneName("source token"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := host.client()
			if err != nil {
				return err
			}
			t, err := c.SourceToken(cmd.Context(), args[0], rotate)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Remote: %s\nToken:  %s\nCA:     %s\n", t.URL, t.Token, t.CAFile)
			return nil
		},
	}
	cmd.Flags().BoolVar(&rotate, "rotate", false, "Make a new token first")
	return cmd
}

func newSourceRemoteCommand(host *hostFlag) *cobra.Command {
	var remote string
	cmd := &cobra.Command{
		Use:   "remote [--name berth] NAME",
		Short: "Print the git commands that add a push source as a remote",
		Example: `  berth source add apps --push
  eval "$(berth source remote apps)"   # in the repository's work tree
  git push berth main                  # prints the plan, then the rollout`,
		Args: exactlyOneName("source remote"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := host.client()
			if err != nil {
				return err
			}
			t, err := c.SourceToken(cmd.Context(), args[0], false)
			if err != nil {
				return err
			}
			withToken, base, err := remoteURLs(t.URL, t.Token)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "git remote add %s %s\n", remote, withToken)
			fmt.Fprintf(w, "git config http.%s.sslCAInfo %s\n", base, t.CAFile)
			return nil
		},
	}
	cmd.Flags().StringVar(&remote, "name", "berth", "Name of the git remote")
	return cmd
}

// remoteURLs puts the token into the remote's URL (as the password), and returns the
// server's base URL for git's per-server settings.
func remoteURLs(remote, token string) (withToken, base string, err error) {
	u, err := neturl.Parse(remote)
	if err != nil {
		return "", "", fmt.Errorf("the manager answered a bad remote URL %q: %w", remote, err)
	}
	base = u.Scheme + "://" + u.Host + "/"
	u.User = neturl.UserPassword("berth", token)
	return u.String(), base, nil
}
