package main

import (
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berthd/berth/spec/svcflags"
)

// registerServiceFlags adds the flags `service create` and `service update` share,
// with Docker's names.
func registerServiceFlags(f *pflag.FlagSet, o *svcflags.Options) {
	f.Uint64Var(&o.Replicas, "replicas", 1, "Number of tasks")
	f.Uint64Var(&o.MaxPerNode, "replicas-max-per-node", 0, "Maximum number of tasks per node (0 = unlimited)")
	f.StringVar(&o.ReserveCPU, "reserve-cpu", "", "Reserve CPUs (e.g. 0.5)")
	f.StringVar(&o.ReserveMemory, "reserve-memory", "", "Reserve memory (e.g. 512M)")
	f.StringVar(&o.LimitCPU, "limit-cpu", "", "Limit CPUs")
	f.StringVar(&o.LimitMemory, "limit-memory", "", "Limit memory")
	registerUpdateConfigFlags(f, "update", &o.Update, "pause|continue|rollback")
	registerUpdateConfigFlags(f, "rollback", &o.Rollback, "pause|continue")
	f.StringVar(&o.Restart.Condition, "restart-condition", "", `Restart when condition is met ("none", "on-failure", "any")`)
	f.DurationVar(&o.Restart.Delay, "restart-delay", 0, "Delay between restart attempts")
	f.Uint64Var(&o.Restart.MaxAttempts, "restart-max-attempts", 0, "Maximum number of restarts before giving up")
	f.DurationVar(&o.Restart.Window, "restart-window", 0, "Window used to evaluate the restart policy")
	f.StringVar(&o.Health.Cmd, "health-cmd", "", "Command to run to check health (run by the container's shell)")
	f.DurationVar(&o.Health.Interval, "health-interval", 0, "Time between running the check")
	f.DurationVar(&o.Health.Timeout, "health-timeout", 0, "Maximum time to allow one check to run")
	f.Uint64Var(&o.Health.Retries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	f.DurationVar(&o.Health.StartPeriod, "health-start-period", 0, "Start period for the container to initialize before counting retries")
	f.BoolVar(&o.Health.None, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")
	f.StringVar(&o.Hostname, "hostname", "", "Container hostname")
	f.StringVarP(&o.User, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	f.StringVarP(&o.Workdir, "workdir", "w", "", "Working directory inside the container")
	f.StringVar(&o.Entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	f.DurationVar(&o.StopGracePeriod, "stop-grace-period", 0, "Time to wait before force killing a container")
}

func registerUpdateConfigFlags(f *pflag.FlagSet, prefix string, u *svcflags.UpdateFlags, actions string) {
	f.Uint64Var(&u.Parallelism, prefix+"-parallelism", 1, "Maximum number of tasks updated simultaneously (0 to update all at once)")
	f.DurationVar(&u.Delay, prefix+"-delay", 0, "Delay between updates")
	f.StringVar(&u.FailureAction, prefix+"-failure-action", "", "Action on failure ("+actions+")")
	f.DurationVar(&u.Monitor, prefix+"-monitor", 0, "Duration after each task update to monitor for failure")
	f.Float64Var(&u.MaxFailureRatio, prefix+"-max-failure-ratio", 0, "Failure rate to tolerate")
	f.StringVar(&u.Order, prefix+"-order", "", `Order of operations ("start-first", "stop-first")`)
}

// listFlags registers the repeatable flags that add entries, named name+suffix
// ("env", "-add": --env-add).
func registerListFlags(f *pflag.FlagSet, l *svcflags.Lists, suffix, verb string) {
	short := func(s string) string {
		if suffix != "" {
			return ""
		}
		return s
	}
	f.StringArrayVarP(&l.Env, "env"+suffix, short("e"), nil, verb+" environment variables (KEY=VALUE)")
	f.StringArrayVar(&l.Labels, "label"+suffix, nil, verb+" service labels (KEY=VALUE)")
	f.StringArrayVar(&l.Constraints, "constraint"+suffix, nil, verb+" placement constraints (e.g. 'node.labels.os == linux')")
	f.StringArrayVar(&l.Prefs, "placement-pref"+suffix, nil, verb+" placement preferences (spread=node.labels.KEY)")
	f.StringArrayVar(&l.Mounts, "mount"+suffix, nil, verb+" mounts (type=volume|bind|tmpfs,source=,target=[,readonly])")
	f.StringArrayVarP(&l.Publish, "publish"+suffix, short("p"), nil, verb+" published ports (8080:80, or published=8080,target=80[,mode=ingress|host][,protocol=tcp|udp])")
	f.StringArrayVar(&l.Networks, "network"+suffix, nil, verb+" network attachments (NAME, or name=NAME,alias=ALIAS)")
	f.StringArrayVar(&l.Secrets, "secret"+suffix, nil, verb+" secrets (NAME, or source=NAME,target=PATH[,uid=,gid=,mode=])")
	f.StringArrayVar(&l.Configs, "config"+suffix, nil, verb+" configs (NAME, or source=NAME,target=PATH[,uid=,gid=,mode=])")
}

// givenFlags names the command's own flags the user gave (not the global ones).
func givenFlags(cmd *cobra.Command) map[string]bool {
	out := map[string]bool{}
	cmd.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			out[f.Name] = true
		}
	})
	return out
}

// finishOptions completes the options of a command about to run.
func finishOptions(cmd *cobra.Command, o *svcflags.Options) {
	o.Given = givenFlags(cmd)
	o.LookupEnv = os.LookupEnv
}
