// Command labctl starts, shows and removes a multi-node berth lab on this machine
// for people (scripts/lab.sh, make lab-up, the demo); tests use package netlab
// directly. The lab it starts outlives it and is removed by `labctl down`:
//
//	labctl up [--name lab] [--managers M] [--bin bin/berth] [--dir /var/lib/berth-lab] N
//	labctl status
//	labctl env [--name lab]    # shell assignments for scripts: BERTH_LAB_HOST_1=unix://...
//	labctl down [--name lab]
//
// Labs are named, so that the demo's (--name demo) and a person's do not take each
// other for their own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berthd/berth/internal/netlab"
)

func main() {
	if err := closeInheritedFiles(); err != nil {
		fmt.Fprintln(os.Stderr, "labctl:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "labctl:", err)
		os.Exit(1)
	}
}

// closeInheritedFiles marks every file this process inherited beyond standard
// input, output and error close-on-exec. The daemons of a lab outlive labctl, and
// would otherwise hold what its caller left open to the end of the lab: a
// `flock FILE scripts/lab.sh up 3` would keep FILE locked until `lab.sh down`.
func closeInheritedFiles() error {
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list open files: %w", err)
	}
	for _, de := range des {
		if fd, err := strconv.Atoi(de.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

const usage = "usage: labctl up [--name NAME] [--managers M] [--bin PATH] [--dir DIR] N | status | env [--name NAME] | down [--name NAME]"

// defaultName is the name of the lab a person starts without naming it.
const defaultName = "lab"

func run(ctx context.Context, args []string, w io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "up":
		return up(ctx, args[1:], w)
	case "status":
		return status(w)
	case "env", "down":
		fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
		name := fs.String("name", defaultName, "the lab's name")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			return errors.New(usage)
		}
		if args[0] == "env" {
			return env(w, *name)
		}
		return down(ctx, w, *name)
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

// up starts a kept lab of N nodes named --name, unless one of N nodes with every
// daemon alive is there already: then it only shows it, so that running it again
// converges. A lab of that name with a dead daemon is rebuilt; one of another size
// is left alone, with an error.
func up(ctx context.Context, args []string, w io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	cfg := netlab.Config{Keep: true, HostLeg: true}
	fs.StringVar(&cfg.Name, "name", defaultName, "the lab's name")
	fs.IntVar(&cfg.Managers, "managers", 1, "how many of the nodes are managers")
	fs.StringVar(&cfg.Bin, "bin", "bin/berth", "the berth binary")
	fs.StringVar(&cfg.Dir, "dir", "/var/lib/berth-lab", "where the lab's directory goes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(usage)
	}
	n, err := strconv.Atoi(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("node count %q: %w", fs.Arg(0), err)
	}
	st, err := keptLab(cfg.Name)
	if err != nil {
		return err
	}
	switch {
	case st != nil && len(st.Nodes) != n:
		return fmt.Errorf("lab %q (%s) has %d nodes, not %d: take it down first (down --name %s), or name another",
			cfg.Name, st.ID, len(st.Nodes), n, cfg.Name)
	case st != nil && allAlive(st):
		fmt.Fprintf(w, "lab %q (%s) is up already\n", cfg.Name, st.ID)
		printLab(w, st)
		return nil
	case st != nil:
		fmt.Fprintf(w, "rebuilding lab %q (%s): a daemon is down\n", cfg.Name, st.ID)
		if err := netlab.Teardown(ctx, st); err != nil {
			return err
		}
	}
	cfg.Nodes = n
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return err
	}
	lab, err := netlab.Start(ctx, cfg)
	if err != nil {
		return err
	}
	s := lab.State()
	fmt.Fprintf(w, "lab %q (%s) is up\n", cfg.Name, s.ID)
	printLab(w, &s)
	return nil
}

// keptLab is the kept lab (one without an owner process) of that name, or nil.
func keptLab(name string) (*netlab.State, error) {
	ids, err := netlab.Labs()
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		st, err := netlab.ReadState(id)
		if err != nil {
			return nil, err
		}
		if st.Owner == 0 && st.Name == name {
			return st, nil
		}
	}
	return nil, nil
}

func allAlive(st *netlab.State) bool {
	for _, n := range st.Nodes {
		if !netlab.DaemonAlive(n) {
			return false
		}
	}
	return true
}

func printLab(w io.Writer, st *netlab.State) {
	fmt.Fprintf(w, "underlay %s (namespace %s)", st.Subnet, st.Underlay)
	if st.HostLeg != "" {
		fmt.Fprintf(w, "; this shell reaches it through %s", st.HostLeg)
	}
	fmt.Fprintln(w)
	for _, n := range st.Nodes {
		alive := "up"
		if !netlab.DaemonAlive(n) {
			alive = "DOWN"
		}
		role := "worker"
		if n.Manager {
			role = "manager"
		}
		fmt.Fprintf(w, "  %-7s %-7s %-15s daemon %-4s berth -H unix://%s node ls\n", n.Name, role, n.Addr, alive, n.Socket)
		fmt.Fprintf(w, "          log %s; shell in its network: nsenter --net=%s\n", n.Log, netlab.NetNSPath(n.NetNS))
	}
}

func status(w io.Writer) error {
	ids, err := netlab.Labs()
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		fmt.Fprintln(w, "no lab")
	}
	for _, id := range ids {
		st, err := netlab.ReadState(id)
		if err != nil {
			return err
		}
		owner := fmt.Sprintf("%q, kept until labctl down --name %s", st.Name, st.Name)
		if st.Owner != 0 {
			owner = fmt.Sprintf("owned by pid %d", st.Owner)
			if st.Orphaned() {
				owner += " (gone: the next lab start removes it)"
			}
		}
		fmt.Fprintf(w, "lab %s, %s\n", st.ID, owner)
		printLab(w, st)
	}
	return nil
}

// env prints the kept lab as shell assignments, for scripts to eval.
func env(w io.Writer, name string) error {
	st, err := keptLab(name)
	if err != nil {
		return err
	}
	if st == nil {
		return fmt.Errorf("no lab %q is up (labctl up --name %s N)", name, name)
	}
	fmt.Fprintf(w, "BERTH_LAB_ID=%s\nBERTH_LAB_NODES=%d\nBERTH_LAB_SUBNET=%s\n", st.ID, len(st.Nodes), st.Subnet)
	for i, n := range st.Nodes {
		fmt.Fprintf(w, "BERTH_LAB_NAME_%d=%s\nBERTH_LAB_HOST_%d=unix://%s\nBERTH_LAB_ADDR_%d=%s\nBERTH_LAB_NAMESPACE_%d=%s\n",
			i+1, n.Name, i+1, n.Socket, i+1, n.Addr, i+1, n.Namespace)
	}
	return nil
}

// down removes the kept lab of that name and the labs of processes that are gone.
func down(ctx context.Context, w io.Writer, name string) error {
	st, err := keptLab(name)
	if err != nil {
		return err
	}
	if st != nil {
		if err := netlab.Teardown(ctx, st); err != nil {
			return err
		}
		fmt.Fprintf(w, "removed lab %q (%s)\n", name, st.ID)
		// The directory that up made for its labs, if no other lab is in it.
		_ = os.Remove(filepath.Dir(st.Dir))
	}
	removed, err := netlab.RemoveOrphans(ctx)
	for _, id := range removed {
		fmt.Fprintf(w, "removed lab %s (its owner is gone)\n", id)
	}
	return err
}
