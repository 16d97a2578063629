package netlab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// StateDir holds one file per lab that runs on the machine: what its teardown must
// remove, and whose lab it is. A file whose owner is gone is a crashed run's.
const StateDir = "/run/berth-lab"

// State is what a lab made on the machine, written before it makes it, so that
// anything (Close, a later Start, `labctl down`) can remove it from the file alone.
type State struct {
	ID string `json:"id"`
	// Name tells a kept lab from another (`labctl up --name`); tests leave it empty.
	Name string `json:"name,omitempty"`
	// Owner is the process the lab dies with, OwnerStart its start time (in clock
	// ticks since boot, /proc/PID/stat field 22) so that a reused PID is not taken
	// for it. Owner 0: the lab is kept until `labctl down`.
	Owner      int    `json:"owner"`
	OwnerStart uint64 `json:"owner_start,omitempty"`
	// Subnet is the lab's /24 in 198.18.0.0/15: node i is .i, the host leg .254.
	Subnet     netip.Prefix `json:"subnet"`
	Dir        string       `json:"dir"`
	Underlay   string       `json:"underlay_netns"`
	HostLeg    string       `json:"host_leg,omitempty"`
	Containerd string       `json:"containerd"`
	Nodes      []NodeState  `json:"nodes"`
}

// NodeState is one node of a lab.
type NodeState struct {
	Name    string `json:"name"`
	Manager bool   `json:"manager,omitempty"`
	NetNS   string `json:"netns"`
	Addr    string `json:"addr"`
	DataDir string `json:"data_dir"`
	Socket  string `json:"socket"`
	Log     string `json:"log"`
	// Namespace is the node's containerd namespace, RunDir the daemon's per
	// namespace run dir (tasks' secret and config tmpfs).
	Namespace string `json:"containerd_namespace"`
	RunDir    string `json:"run_dir"`
	PID       int    `json:"pid,omitempty"`
}

func statePath(id string) string { return filepath.Join(StateDir, id+".json") }

func writeState(st *State) error {
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return fmt.Errorf("lab state dir: %w", err)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(st.ID) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	return os.Rename(tmp, statePath(st.ID))
}

// lockStateDir takes the state dir's lock (flock, released when the process ends
// too) and returns its release.
func lockStateDir() (func(), error) {
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("lab state dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(StateDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lab state lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lab state lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// ReadState reads lab id's state file.
func ReadState(id string) (*State, error) {
	b, err := os.ReadFile(statePath(id))
	if err != nil {
		return nil, fmt.Errorf("lab %s: %w", id, err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("lab %s: state file %s: %w", id, statePath(id), err)
	}
	return &st, nil
}

// Labs lists the IDs of the labs that have a state file.
func Labs() ([]string, error) {
	des, err := os.ReadDir(StateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list labs: %w", err)
	}
	var ids []string
	for _, de := range des {
		if id, ok := strings.CutSuffix(de.Name(), ".json"); ok {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// Orphaned reports whether the lab's owner is gone: a test run that crashed or was
// killed before Close.
func (st *State) Orphaned() bool {
	if st.Owner == 0 {
		return false
	}
	start, err := processStart(st.Owner)
	return err != nil || start != st.OwnerStart
}

// processStart is the start time of process pid in clock ticks since boot.
func processStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatStart(string(b))
}

// parseStatStart takes field 22 (starttime) of a /proc/PID/stat line. The command
// name (field 2) is in parentheses and may hold spaces, so fields count from the
// last ')'.
func parseStatStart(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat: no command name")
	}
	fields := strings.Fields(stat[i+1:])
	const startField = 22 - 3 // fields after the name start at field 3
	if len(fields) <= startField {
		return 0, fmt.Errorf("malformed /proc stat: %d fields after the name", len(fields))
	}
	return strconv.ParseUint(fields[startField], 10, 64)
}

// usedSubnets are the /24s of the labs that have a state file.
func usedSubnets() (map[netip.Prefix]bool, error) {
	ids, err := Labs()
	if err != nil {
		return nil, err
	}
	used := map[netip.Prefix]bool{}
	for _, id := range ids {
		if st, err := ReadState(id); err == nil {
			used[st.Subnet] = true
		}
	}
	return used, nil
}

// pickSubnet returns the first /24 of 198.18.0.0/15 from the one at index start
// (0-511) on that used does not hold.
func pickSubnet(start int, used map[netip.Prefix]bool) (netip.Prefix, error) {
	const subnets = 512 // /24s in a /15
	for k := range subnets {
		i := (start + k) % subnets
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18 + byte(i/256), byte(i % 256), 0}), 24)
		if !used[p] {
			return p, nil
		}
	}
	return netip.Prefix{}, errors.New("every /24 of 198.18.0.0/15 is taken by a lab")
}

// hostAddr is address .n of the lab's /24.
func hostAddr(subnet netip.Prefix, n int) netip.Addr {
	a := subnet.Addr().As4()
	a[3] = byte(n)
	return netip.AddrFrom4(a)
}
