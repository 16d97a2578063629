package svcflags

import (
	"encoding/csv"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/docker/go-units"

	"github.com/berthd/berth/spec"
)

// fields splits Docker's csv form ("type=volume,source=data,target=/data") into
// key=value pairs, in order; a key without a value has the value "".
func fields(flag, value string) ([][2]string, error) {
	r := csv.NewReader(strings.NewReader(value))
	rec, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("invalid --%s %q: %w", flag, value, err)
	}
	out := make([][2]string, 0, len(rec))
	for _, f := range rec {
		k, v, _ := strings.Cut(f, "=")
		out = append(out, [2]string{strings.ToLower(strings.TrimSpace(k)), v})
	}
	return out, nil
}

func parseBool(flag, key, v string) (bool, error) {
	if v == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("invalid --%s: %s=%s is not true or false", flag, key, v)
	}
	return b, nil
}

// parseMount reads --mount as Docker does: type (volume by default), source,
// target, readonly and the options of each type.
func parseMount(value string) (spec.Mount, error) {
	fs, err := fields("mount", value)
	if err != nil {
		return spec.Mount{}, err
	}
	m := spec.Mount{Type: spec.MountVolume}
	for _, f := range fs {
		if err := setMountField(&m, f[0], f[1]); err != nil {
			return spec.Mount{}, err
		}
	}
	if m.Target == "" {
		return spec.Mount{}, fmt.Errorf("invalid --mount %q: give target=PATH, the path inside the container", value)
	}
	return m, nil
}

func setMountField(m *spec.Mount, k, v string) error {
	var err error
	switch k {
	case "type":
		m.Type = v
	case "source", "src":
		m.Source = v
	case "target", "destination", "dst":
		m.Target = v
	case "readonly", "ro":
		m.ReadOnly, err = parseBool("mount", k, v)
	case "volume-nocopy":
		m.NoCopy, err = parseBool("mount", k, v)
	case "bind-propagation":
		m.Propagation = v
	case "volume-subpath":
		m.Subpath = v
	case "volume-opt":
		ok, ov, _ := strings.Cut(v, "=")
		m.DriverOpts = setKey(m.DriverOpts, ok, ov)
	case "volume-driver":
		if v != "local" {
			return fmt.Errorf("invalid --mount: volume-driver=%s: berth has no volume plugins; use volume-opt=type=nfs,... with the local driver", v)
		}
	case "tmpfs-size":
		m.TmpfsSize, err = parseBytes("mount tmpfs-size", v)
	case "tmpfs-mode":
		var n uint64
		n, err = strconv.ParseUint(v, 8, 32)
		m.TmpfsMode = uint32(n)
	case "consistency":
		// macOS only in Docker: nothing to do on Linux nodes.
	default:
		return fmt.Errorf("invalid --mount: unknown key %q (known: type, source, target, readonly, volume-opt, volume-nocopy, volume-subpath, bind-propagation, tmpfs-size, tmpfs-mode)", k)
	}
	if err != nil {
		return fmt.Errorf("invalid --mount %s=%s: %w", k, v, err)
	}
	return nil
}

// parsePort reads --publish in Docker's short form (PUBLISHED:TARGET[/PROTOCOL] or
// TARGET[/PROTOCOL]) or long form (published=,target=,mode=,protocol=).
func parsePort(value string) (spec.Port, error) {
	p := spec.Port{Protocol: "tcp", Mode: spec.PortModeIngress}
	if !strings.Contains(value, "=") {
		return p, parseShortPort(&p, value)
	}
	fs, err := fields("publish", value)
	if err != nil {
		return p, err
	}
	for _, f := range fs {
		switch k, v := f[0], f[1]; k {
		case "published":
			p.Published, err = portNumber(v)
		case "target":
			p.Target, err = portNumber(v)
		case "mode":
			p.Mode = v
		case "protocol":
			p.Protocol = v
		default:
			return p, fmt.Errorf("invalid --publish %q: unknown key %q (known: published, target, mode, protocol)", value, k)
		}
		if err != nil {
			return p, fmt.Errorf("invalid --publish %q: %w", value, err)
		}
	}
	if p.Target == 0 {
		return p, fmt.Errorf("invalid --publish %q: give target=PORT, the container's port", value)
	}
	return p, nil
}

func parseShortPort(p *spec.Port, value string) error {
	ports, proto, ok := strings.Cut(value, "/")
	if ok {
		p.Protocol = proto
	}
	published, target, both := strings.Cut(ports, ":")
	if !both {
		target, published = published, ""
	}
	var err error
	if p.Target, err = portNumber(target); err == nil && published != "" {
		p.Published, err = portNumber(published)
	}
	if err != nil {
		return fmt.Errorf("invalid --publish %q: %w; write PUBLISHED:TARGET[/PROTOCOL], e.g. 8080:80", value, err)
	}
	return nil
}

func portNumber(v string) (uint32, error) {
	n, err := strconv.ParseUint(v, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", v)
	}
	return uint32(n), nil
}

// parseNetwork reads --network NAME or name=NAME,alias=ALIAS...
func parseNetwork(value string) (spec.ServiceNetwork, error) {
	if !strings.Contains(value, "=") {
		return spec.ServiceNetwork{Name: value}, nil
	}
	fs, err := fields("network", value)
	if err != nil {
		return spec.ServiceNetwork{}, err
	}
	var n spec.ServiceNetwork
	for _, f := range fs {
		switch f[0] {
		case "name":
			n.Name = f[1]
		case "alias":
			n.Aliases = append(n.Aliases, f[1])
		default:
			return n, fmt.Errorf("invalid --network %q: unknown key %q (known: name, alias)", value, f[0])
		}
	}
	if n.Name == "" {
		return n, fmt.Errorf("invalid --network %q: give name=NETWORK", value)
	}
	return n, nil
}

// parseFileRef reads --secret or --config: NAME, or source=,target=,uid=,gid=,mode=
// as Docker does; the file is at dir+NAME unless target says otherwise.
func parseFileRef(kind, value, dir string) (spec.FileReference, error) {
	r := spec.FileReference{Source: value}
	if strings.Contains(value, "=") {
		fs, err := fields(kind, value)
		if err != nil {
			return r, err
		}
		r = spec.FileReference{}
		for _, f := range fs {
			if err := setFileRefField(&r, kind, f[0], f[1]); err != nil {
				return r, err
			}
		}
	}
	if r.Source == "" {
		return r, fmt.Errorf("invalid --%s %q: give source=NAME, the %s's name", kind, value, kind)
	}
	if r.Target == "" {
		r.Target = r.Source
	}
	if !strings.HasPrefix(r.Target, "/") {
		r.Target = dir + r.Target
	}
	return r, nil
}

func setFileRefField(r *spec.FileReference, kind, k, v string) error {
	switch k {
	case "source", "src":
		r.Source = v
	case "target":
		r.Target = v
	case "uid":
		r.UID = v
	case "gid":
		r.GID = v
	case "mode":
		n, err := strconv.ParseUint(v, 8, 32)
		if err != nil {
			return fmt.Errorf("invalid --%s mode=%s: write an octal mode such as 0440", kind, v)
		}
		m := spec.FileMode(n)
		r.Mode = &m
	default:
		return fmt.Errorf("invalid --%s: unknown key %q (known: source, target, uid, gid, mode)", kind, k)
	}
	return nil
}

// parseCPUs reads a number of CPUs such as 0.5, to the millicore.
func parseCPUs(flag, v string) (spec.NanoCPUs, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1e6 {
		return 0, fmt.Errorf("invalid --%s %q: write a number of CPUs such as 0.5", flag, v)
	}
	return spec.NanoCPUs(math.Round(f*1e3) * 1e6), nil
}

// parseBytes reads a size such as 512M or 1G.
func parseBytes(flag, v string) (int64, error) {
	n, err := units.RAMInBytes(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid --%s %q: write a size such as 512M or 1G", flag, v)
	}
	return n, nil
}

// splitWords splits --entrypoint as Docker does for a plain command line: on
// spaces, keeping what is quoted together.
func splitWords(s string) []string {
	var out []string
	var cur strings.Builder
	quote, inWord := rune(0), false
	for _, c := range s {
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote, inWord = c, true
		case quote == 0 && (c == ' ' || c == '\t'):
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}
