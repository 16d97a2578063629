package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthd/berth/internal/ctrtest"
	"github.com/berthd/berth/runtime/executor"
	"github.com/berthd/berth/runtime/logdriver"
)

// berthSetup makes the bare client's containers the containers berth's tasks are, but
// for their network: what the agent, netstack and the executor give every task.
//   - /etc/hosts and /etc/resolv.conf bind-mounted from files of the container's own,
//     written as it is made (netstack writes a task's at its Setup);
//   - the cgroup file system read-only at /sys/fs/cgroup (the executor's Docker
//     default);
//   - its output through berth's log driver, which the shim starts per container.
//
// What remains berth's own is the CLI, the managers, the agent and the network: a
// namespace joined through a veth to the network's bridge, where the bare client's
// container gets one with loopback only, made by runc.
func berthSetup(dir, logDriver string) ctrtest.RunOption {
	return ctrtest.WithSetup(func(id string) (ctrtest.Setup, error) {
		files := filepath.Join(dir, id)
		logs := filepath.Join(files, "logs")
		if err := os.MkdirAll(logs, 0o700); err != nil {
			return ctrtest.Setup{}, err
		}
		hosts, resolv := filepath.Join(files, "hosts"), filepath.Join(files, "resolv.conf")
		if err := os.WriteFile(hosts, fmt.Appendf(nil, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n", id), 0o644); err != nil {
			return ctrtest.Setup{}, err
		}
		if err := os.WriteFile(resolv, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
			return ctrtest.Setup{}, err
		}
		mounts := []specs.Mount{
			executor.CgroupMount(false),
			executor.BindFile(hosts, "/etc/hosts", false),
			executor.BindFile(resolv, "/etc/resolv.conf", false),
		}
		return ctrtest.Setup{Mounts: mounts, LogBinary: logDriver, LogArgs: logdriver.Args(logdriver.Config{Dir: logs})}, nil
	})
}
