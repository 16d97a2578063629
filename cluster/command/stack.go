package command

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/netstack/ipam"
	"github.com/berthd/berth/spec"
)

// Kinds of what a stack deploy creates, the prefixes of StackDeploy.IDs' keys.
const (
	KindService = "service"
	KindNetwork = "network"
	KindSecret  = "secret"
	KindConfig  = "config"
)

// FirstVNI is the lowest VXLAN network identifier given to overlay networks (Swarm's
// first too: lower ones are left to the operator's own VXLANs).
const FirstVNI = 4096

// StackDeploy writes a whole stack in one entry: its row, its networks, a new version
// of every secret and config whose content changed, and every service, so that a
// stack is applied whole or not at all. Everything non-deterministic comes with it:
// IDs for whatever it may have to create.
type StackDeploy struct {
	// Stack is the stack row; its Spec is the canonical spec. The content of its
	// secrets and configs travels in SecretData and ConfigData (the spec's JSON form
	// leaves it out), and is stored in the Secret and Config tables only.
	Stack      *model.Stack      `json:"stack"`
	SecretData map[string][]byte `json:"secret_data,omitempty"`
	ConfigData map[string][]byte `json:"config_data,omitempty"`
	// IDs proposes an ID for everything the entry may create, keyed "<kind>/<short
	// name>" (KindService...). The FSM uses one only for a row that does not exist
	// yet, or for a new version of a secret or config.
	IDs map[string]string `json:"ids"`
	// Prune deletes the stack's services and networks that the spec no longer has.
	Prune bool `json:"prune,omitempty"`
	// Limited makes the FSM refuse a service above the cluster's limit of replicas
	// (CheckReplicas). Every proposer sets it (control.StackCommand); entries
	// written before the limit existed lack it and apply as they did then.
	Limited bool `json:"limited,omitempty"`
	// Endpoints makes the FSM allocate what issue 16 added: services' VIPs, the
	// ingress network, its name and subnet kept from stacks. Every entry this build
	// encodes has it (MarshalJSON), whoever proposes it; entries written before
	// lack it and apply as they did then.
	Endpoints bool `json:"endpoints,omitempty"`
}

// MarshalJSON encodes d with Endpoints set: see the field.
func (d StackDeploy) MarshalJSON() ([]byte, error) {
	type plain StackDeploy // without this method
	p := plain(d)
	p.Endpoints = true
	return json.Marshal(p)
}

// StackRemove deletes a stack: its row, services, networks, secrets and configs. Its
// tasks are the orchestrator's to stop and reap.
type StackRemove struct {
	Name string `json:"name"`
}

// ServiceScale sets the replicas of a replicated service.
type ServiceScale struct {
	ID       string `json:"id"`
	Replicas uint64 `json:"replicas"`
	// Limited: see StackDeploy.Limited.
	Limited bool `json:"limited,omitempty"`
	// Undoable makes the scale a change `service rollback` undoes, as in Docker: the
	// spec before the scale becomes the previous spec. Every proposer sets it
	// (control.ScaleService); entries written before lack it and apply as they did
	// then, keeping the previous spec, so that a rollback after them undid the
	// update before the scale as well.
	Undoable bool `json:"undoable,omitempty"`
}

// ServiceForceUpdate replaces every task of a service with a new one of the same spec
// (`service update --force`), through a rolling update.
type ServiceForceUpdate struct {
	ID string `json:"id"`
}

// ServiceRollback returns a service to its previous spec (`service rollback`).
type ServiceRollback struct {
	ID  string    `json:"id"`
	Now time.Time `json:"now"`
}

// Messages of the update status the commands write, Swarm's.
const MsgManualRollback = "manually requested rollback"

func applyStackDeploy(tx *state.WriteTxn, d *StackDeploy) error {
	if d.Stack == nil || d.Stack.Spec == nil {
		return fmt.Errorf("%w: stack deploy without a stack spec", state.ErrInvalid)
	}
	name := d.Stack.Name
	if !spec.ValidStackName(name) {
		return fmt.Errorf("%w: invalid stack name %q", state.ErrInvalid, name)
	}
	sp := d.Stack.Spec
	if err := deployNetworks(tx, d, name, sp); err != nil {
		return err
	}
	pins := map[string]uint64{}
	if err := deploySecrets(tx, d, name, sp, pins); err != nil {
		return err
	}
	if err := deployConfigs(tx, d, name, sp, pins); err != nil {
		return err
	}
	var space *addrSpace // nil: an older build's entry allocates nothing
	if d.Endpoints {
		space = newAddrSpace(tx)
		if slices.ContainsFunc(slices.Collect(maps.Values(sp.Services)), func(s *spec.Service) bool { return s != nil && s.PublishesIngress() }) {
			if err := ensureIngress(tx, space, name); err != nil {
				return err
			}
		}
	}
	keep := map[string]bool{}
	for _, key := range slices.Sorted(maps.Keys(sp.Services)) {
		s := sp.Services[key]
		if s == nil {
			return fmt.Errorf("%w: stack %s: service %s has no spec", state.ErrInvalid, name, key)
		}
		full := spec.FullName(name, key)
		keep[full] = true
		if err := deployService(tx, d, space, key, s, servicePins(sp, s, pins)); err != nil {
			return err
		}
	}
	if d.Prune {
		svcs, err := tx.ServicesByStack(nil, name)
		if err != nil {
			return err
		}
		for _, s := range svcs {
			if !keep[s.Name] {
				if err := tx.DeleteService(s.ID); err != nil {
					return err
				}
			}
		}
		nets, err := tx.Networks(nil)
		if err != nil {
			return err
		}
		wanted := map[string]bool{}
		for _, n := range sp.Networks {
			wanted[n.Name] = true
		}
		for _, n := range nets {
			if n.Stack == name && !wanted[n.Name] {
				if err := tx.DeleteNetwork(n.ID); err != nil {
					return err
				}
			}
		}
	}
	return tx.UpsertStack(d.Stack)
}

func proposedID(d *StackDeploy, kind, key string) (string, error) {
	id := d.IDs[kind+"/"+key]
	if id == "" {
		return "", fmt.Errorf("%w: stack deploy proposes no ID for %s %s", state.ErrInvalid, kind, key)
	}
	return id, nil
}

func deployNetworks(tx *state.WriteTxn, d *StackDeploy, stack string, sp *spec.Stack) error {
	for _, key := range slices.Sorted(maps.Keys(sp.Networks)) {
		n := sp.Networks[key]
		existing, err := tx.NetworkByName(nil, n.Name)
		if err != nil && !errors.Is(err, state.ErrNotFound) {
			return err
		}
		// Tasks reach the ingress network by publishing ports, as its last
		// attachment; naming it too would attach them twice.
		if n.Name == IngressName && d.Endpoints {
			return fmt.Errorf("%w: stack %s: network %q is the routing mesh's: publish a port in ingress mode to reach it, and give the stack's network another name",
				state.ErrConflict, stack, n.Name)
		}
		if n.External {
			if existing == nil {
				return fmt.Errorf("%w: stack %s: external network %q does not exist: create it first, or drop `external: true`",
					state.ErrNotFound, stack, n.Name)
			}
			continue
		}
		if existing != nil && existing.Stack != stack {
			return fmt.Errorf("%w: stack %s: network %q already exists%s: give the network another name, or declare it `external: true`",
				state.ErrConflict, stack, n.Name, owner(existing.Stack))
		}
		row := &model.Network{Name: n.Name, Stack: stack, Driver: n.Driver, Options: n.DriverOpts,
			Internal: n.Internal, Attachable: n.Attachable, Labels: n.Labels}
		if len(n.Subnets) > 0 {
			row.Subnet = n.Subnets[0]
		}
		if existing != nil {
			row.Meta, row.ID, row.VNI, row.Gateway, row.Ingress = existing.Meta, existing.ID, existing.VNI, existing.Gateway, existing.Ingress
			if row.Subnet == "" {
				row.Subnet = existing.Subnet
			}
		} else {
			if row.ID, err = proposedID(d, KindNetwork, key); err != nil {
				return err
			}
			if row.Driver == "overlay" {
				if row.VNI, err = freeVNI(tx); err != nil {
					return err
				}
			}
		}
		if err := assignSubnet(tx, stack, row, d.Endpoints); err != nil {
			return err
		}
		if existing != nil && reflect.DeepEqual(row, existing) {
			continue
		}
		if err := tx.UpsertNetwork(row); err != nil {
			return err
		}
	}
	return nil
}

func owner(stack string) string {
	if stack == "" {
		return " outside any stack"
	}
	return " in stack " + stack
}

// assignSubnet gives a network its subnet and gateway: the one its file asks for,
// checked against every other network's, or the lowest free one of the cluster's
// default address pool (Swarm's 10.0.0.0/8 in /24s unless the cluster says
// otherwise). Deterministic, as everything the FSM decides. reserveIngress keeps
// the ingress subnet from the network (StackDeploy.Endpoints).
func assignSubnet(tx *state.WriteTxn, stack string, row *model.Network, reserveIngress bool) error {
	nets, err := tx.Networks(nil)
	if err != nil {
		return err
	}
	// The ingress subnet is taken before the ingress network exists; a network that
	// held part of it before the reservation keeps what it has.
	var claims []ipam.Claim
	var used []netip.Prefix
	if reserveIngress && !slices.ContainsFunc(nets, func(n *model.Network) bool { return n.ID == row.ID && n.Subnet == row.Subnet }) {
		claims = []ipam.Claim{{Network: IngressName, Subnet: ipam.IngressSubnet}}
		used = []netip.Prefix{ipam.IngressSubnet}
	}
	for _, n := range nets {
		if n.ID == row.ID || n.Subnet == "" {
			continue
		}
		p, err := netip.ParsePrefix(n.Subnet)
		if err != nil {
			continue
		}
		claims = append(claims, ipam.Claim{Network: n.Name, Subnet: p})
		used = append(used, p)
	}
	var subnet netip.Prefix
	if row.Subnet != "" {
		if subnet, err = netip.ParsePrefix(row.Subnet); err != nil {
			return fmt.Errorf("%w: stack %s: network %s: subnet %q is not a CIDR (like 10.20.0.0/24)", state.ErrInvalid, stack, row.Name, row.Subnet)
		}
		if err := ipam.CheckSubnet(row.Name, subnet, claims); err != nil {
			return fmt.Errorf("%w: stack %s: %v", state.ErrConflict, stack, err)
		}
	} else {
		pool, size := ipam.DefaultPool, ipam.DefaultSubnetSize
		if c, err := tx.Cluster(nil); err == nil {
			if len(c.Settings.DefaultAddrPool) > 0 {
				if p, err := netip.ParsePrefix(c.Settings.DefaultAddrPool[0]); err == nil {
					pool = p
				}
			}
			if c.Settings.DefaultAddrPoolMaskLen > 0 {
				size = int(c.Settings.DefaultAddrPoolMaskLen)
			}
		}
		if subnet, err = ipam.AllocateSubnet(pool, size, used); err != nil {
			return fmt.Errorf("%w: stack %s: network %s: %v", state.ErrConflict, stack, row.Name, err)
		}
	}
	row.Subnet = subnet.Masked().String()
	if gw, err := netip.ParseAddr(row.Gateway); err != nil || !subnet.Contains(gw) {
		row.Gateway = ipam.Gateway(subnet).String()
	}
	return nil
}

// freeVNI is the lowest unused VXLAN network identifier from FirstVNI: deterministic,
// as everything the FSM decides.
func freeVNI(tx *state.WriteTxn) (uint32, error) {
	nets, err := tx.Networks(nil)
	if err != nil {
		return 0, err
	}
	used := map[uint32]bool{}
	for _, n := range nets {
		used[n.VNI] = true
	}
	for v := uint32(FirstVNI); v < 1<<24; v++ {
		if !used[v] {
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w: no free VXLAN network identifier", state.ErrConflict)
}

// object is what secrets and configs share, for the code that versions them.
type object struct {
	id, stack string
	version   uint64
	data      []byte
	labels    map[string]string
}

func deploySecrets(tx *state.WriteTxn, d *StackDeploy, stack string, sp *spec.Stack, pins map[string]uint64) error {
	for _, key := range slices.Sorted(maps.Keys(sp.Secrets)) {
		s := sp.Secrets[key]
		latest := func() (*object, error) {
			row, err := tx.Secret(nil, s.Name)
			if err != nil {
				return nil, err
			}
			return &object{row.ID, row.Stack, row.Version, row.Data, row.Labels}, nil
		}
		write := func(id string, version uint64, data []byte) error {
			return tx.UpsertSecret(&model.Secret{ID: id, Name: s.Name, Stack: stack, Version: version, Data: data, Labels: s.Labels})
		}
		if err := deployObject(d, KindSecret, stack, key, &s.FileObject, d.SecretData, latest, write, pins); err != nil {
			return err
		}
	}
	return nil
}

func deployConfigs(tx *state.WriteTxn, d *StackDeploy, stack string, sp *spec.Stack, pins map[string]uint64) error {
	for _, key := range slices.Sorted(maps.Keys(sp.Configs)) {
		c := sp.Configs[key]
		latest := func() (*object, error) {
			row, err := tx.Config(nil, c.Name)
			if err != nil {
				return nil, err
			}
			return &object{row.ID, row.Stack, row.Version, row.Data, row.Labels}, nil
		}
		write := func(id string, version uint64, data []byte) error {
			return tx.UpsertConfig(&model.Config{ID: id, Name: c.Name, Stack: stack, Version: version, Data: data, Labels: c.Labels})
		}
		if err := deployObject(d, KindConfig, stack, key, &c.FileObject, d.ConfigData, latest, write, pins); err != nil {
			return err
		}
	}
	return nil
}

// deployObject writes a new version of a secret or config when its content or labels
// changed, and pins the version the stack's services are to mount. Its errors never
// carry the content.
func deployObject(d *StackDeploy, kind, stack, key string, o *spec.FileObject, content map[string][]byte,
	latest func() (*object, error), write func(id string, version uint64, data []byte) error, pins map[string]uint64) error {
	cur, err := latest()
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		return err
	}
	pin := model.ObjectKey(kind, o.Name)
	if o.External {
		if cur == nil {
			return fmt.Errorf("%w: stack %s: external %s %q does not exist: create it first, or drop `external: true`",
				state.ErrNotFound, stack, kind, o.Name)
		}
		pins[pin] = cur.version
		return nil
	}
	data, ok := content[key]
	if !ok {
		return fmt.Errorf("%w: stack %s: no content for %s %s", state.ErrInvalid, stack, kind, key)
	}
	if cur != nil && cur.stack != stack {
		return fmt.Errorf("%w: stack %s: %s %q already exists%s: declare it `external: true` in the stack, or give it another name",
			state.ErrConflict, stack, kind, o.Name, owner(cur.stack))
	}
	if cur != nil && bytes.Equal(cur.data, data) && maps.Equal(cur.labels, o.Labels) {
		pins[pin] = cur.version
		return nil
	}
	id, err := proposedID(d, kind, key)
	if err != nil {
		return err
	}
	version := uint64(1)
	if cur != nil {
		version = cur.version + 1
	}
	if err := write(id, version, data); err != nil {
		return err
	}
	pins[pin] = version
	return nil
}

// servicePins picks the versions a service's secret and config references resolve to.
func servicePins(sp *spec.Stack, s *spec.Service, pins map[string]uint64) map[string]uint64 {
	var out map[string]uint64
	add := func(kind, name string) {
		k := model.ObjectKey(kind, name)
		if v, ok := pins[k]; ok {
			if out == nil {
				out = map[string]uint64{}
			}
			out[k] = v
		}
	}
	for _, r := range s.Secrets {
		if o := sp.Secrets[r.Source]; o != nil {
			add(KindSecret, o.Name)
		}
	}
	for _, r := range s.Configs {
		if o := sp.Configs[r.Source]; o != nil {
			add(KindConfig, o.Name)
		}
	}
	return out
}

// deployService creates a service, or changes it when its spec or pinned secrets and
// configs changed: the previous spec is kept for rollbacks, the spec version grows and
// the update status is cleared, which is what starts a rolling update. Its VIPs follow
// its networks; a service whose VIPs alone change (one written by a build without
// them) is written without a new version: its tasks do not change.
func deployService(tx *state.WriteTxn, d *StackDeploy, space *addrSpace, key string, s *spec.Service, pins map[string]uint64) error {
	stack := d.Stack.Name
	if d.Limited {
		if err := CheckReplicas(&tx.ReadTxn, stack, s); err != nil {
			return err
		}
	}
	full := spec.FullName(stack, key)
	cur, err := tx.ServiceByName(nil, full)
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		return err
	}
	if cur != nil && cur.Stack != stack {
		return fmt.Errorf("%w: stack %s: a service named %s already exists%s: rename the service or the stack",
			state.ErrConflict, stack, full, owner(cur.Stack))
	}
	vips, err := deployVIPs(tx, d, space, cur, s)
	if err != nil {
		return err
	}
	if cur == nil {
		id, err := proposedID(d, KindService, key)
		if err != nil {
			return err
		}
		return tx.UpsertService(&model.Service{ID: id, Name: full, Stack: stack, Spec: *s, Objects: pins, SpecVersion: 1,
			Endpoint: model.Endpoint{VIPs: vips}})
	}
	next := cur.Copy()
	next.Endpoint.VIPs = vips
	if bytes.Equal(cur.Spec.Canonical(), s.Canonical()) && maps.Equal(cur.Objects, pins) {
		if slices.Equal(cur.Endpoint.VIPs, vips) {
			return nil
		}
		return tx.UpsertService(next)
	}
	keepPrevious(next, cur)
	next.Spec = *s
	next.Objects = pins
	next.SpecVersion++
	next.UpdateStatus = model.UpdateStatus{}
	return tx.UpsertService(next)
}

// deployVIPs returns the VIPs a deployed service gets: those of its networks under
// the new spec, or, for an older build's entry (space nil), those it has.
func deployVIPs(tx *state.WriteTxn, d *StackDeploy, space *addrSpace, cur *model.Service, s *spec.Service) ([]model.VIP, error) {
	var vips []model.VIP
	if cur != nil {
		vips = cur.Endpoint.VIPs
	}
	if space == nil {
		return vips, nil
	}
	nets, err := ServiceNetworks(&tx.ReadTxn, d.Stack.Spec, s)
	if err == nil {
		vips, err = serviceVIPs(space, vips, s, nets)
	}
	if err != nil {
		return nil, fmt.Errorf("stack %s: %w", d.Stack.Name, err)
	}
	return vips, nil
}

func applyStackRemove(tx *state.WriteTxn, r *StackRemove) error {
	found := false
	if _, err := tx.Stack(nil, r.Name); err == nil {
		found = true
		if err := tx.DeleteStack(r.Name); err != nil {
			return err
		}
	} else if !errors.Is(err, state.ErrNotFound) {
		return err
	}
	svcs, err := tx.ServicesByStack(nil, r.Name)
	if err != nil {
		return err
	}
	for _, s := range svcs {
		found = true
		if err := tx.DeleteService(s.ID); err != nil {
			return err
		}
	}
	nets, err := tx.Networks(nil)
	if err != nil {
		return err
	}
	for _, n := range nets {
		if n.Stack == r.Name {
			found = true
			if err := tx.DeleteNetwork(n.ID); err != nil {
				return err
			}
		}
	}
	secrets, err := tx.Secrets(nil)
	if err != nil {
		return err
	}
	for _, s := range secrets {
		if s.Stack == r.Name {
			found = true
			if err := tx.DeleteSecret(s.ID); err != nil {
				return err
			}
		}
	}
	configs, err := tx.Configs(nil)
	if err != nil {
		return err
	}
	for _, c := range configs {
		if c.Stack == r.Name {
			found = true
			if err := tx.DeleteConfig(c.ID); err != nil {
				return err
			}
		}
	}
	if !found {
		return fmt.Errorf("stack %s: %w", r.Name, state.ErrNotFound)
	}
	return nil
}

func isReplicated(s *spec.Service) bool {
	return s.Deploy.Mode == spec.ModeReplicated || s.Deploy.Mode == spec.ModeReplicatedJob || s.Deploy.Mode == ""
}

func applyServiceScale(tx *state.WriteTxn, c *ServiceScale) error {
	cur, err := tx.Service(nil, c.ID)
	if err != nil {
		return err
	}
	if !isReplicated(&cur.Spec) {
		return fmt.Errorf("%w: service %s is %s: only replicated services scale", state.ErrInvalid, cur.Name, cur.Spec.Deploy.Mode)
	}
	if r := cur.Spec.Deploy.Replicas; r != nil && *r == c.Replicas {
		return nil
	}
	next := cur.Copy()
	n := c.Replicas
	next.Spec.Deploy.Replicas = &n
	if c.Limited {
		if err := CheckReplicas(&tx.ReadTxn, cur.Stack, &next.Spec); err != nil {
			return err
		}
	}
	if c.Undoable {
		keepPrevious(next, cur)
	}
	// A new version makes plans computed for the old count stale. The update status
	// stays: a scale rolls nothing.
	next.SpecVersion++
	return tx.UpsertService(next)
}

func applyServiceForceUpdate(tx *state.WriteTxn, c *ServiceForceUpdate) error {
	cur, err := tx.Service(nil, c.ID)
	if err != nil {
		return err
	}
	next := cur.Copy()
	keepPrevious(next, cur)
	next.ForceUpdate++
	next.SpecVersion++
	next.UpdateStatus = model.UpdateStatus{}
	return tx.UpsertService(next)
}

// keepPrevious makes cur's spec and pinned objects next's previous ones: what
// `service rollback` returns to.
func keepPrevious(next, cur *model.Service) {
	prev := cur.Copy()
	next.PreviousSpec = &prev.Spec
	next.PreviousObjects = prev.Objects
}

func applyServiceRollback(tx *state.WriteTxn, c *ServiceRollback) error {
	cur, err := tx.Service(nil, c.ID)
	if err != nil {
		return err
	}
	if cur.PreviousSpec == nil {
		return fmt.Errorf("%w: service %s has no previous spec to roll back to", state.ErrInvalid, cur.Name)
	}
	next := rolledBack(tx, cur)
	next.UpdateStatus = model.UpdateStatus{State: model.UpdateRollbackStarted, Message: MsgManualRollback, StartedAt: c.Now}
	return tx.UpsertService(next)
}

// rolledBack swaps a service's spec and pinned objects with the previous ones. It
// keeps the VIPs of the networks the spec it returns to is on and allocates none:
// these entries are the same as an older build's, which must apply as they did
// then; the leader asks for the missing VIPs (ServiceEndpoints). When the networks
// cannot be read (the stack no longer defines one) the VIPs stay as they are:
// refusing the rollback would refuse the whole entry, other services' plans with it.
func rolledBack(tx *state.WriteTxn, cur *model.Service) *model.Service {
	next := cur.Copy()
	next.Spec, *next.PreviousSpec = *next.PreviousSpec, next.Spec
	next.Objects, next.PreviousObjects = next.PreviousObjects, next.Objects
	next.SpecVersion++
	if nets, err := networksOf(tx, next); err == nil {
		next.Endpoint.VIPs = slices.DeleteFunc(next.Endpoint.VIPs, func(v model.VIP) bool {
			return !next.Spec.Deploy.VIP() || !slices.ContainsFunc(nets, func(n *model.Network) bool { return n.ID == v.Network })
		})
	}
	return next
}
