package spec

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/xhit/go-str2duration/v2"
)

// Value formats checked on the merged model before it is decoded, so that every bad value
// is reported (the decoder would stop at its first) and named with its field path.
var (
	durationFields = []string{
		"healthcheck.interval", "healthcheck.timeout", "healthcheck.start_period", "healthcheck.start_interval",
		"stop_grace_period",
		"deploy.restart_policy.delay", "deploy.restart_policy.window",
		"deploy.update_config.delay", "deploy.update_config.monitor",
		"deploy.rollback_config.delay", "deploy.rollback_config.monitor",
	}
	sizeFields  = []string{"deploy.resources.limits.memory", "deploy.resources.reservations.memory"}
	cpuFields   = []string{"deploy.resources.limits.cpus", "deploy.resources.reservations.cpus"}
	countFields = []string{
		"deploy.replicas", "deploy.placement.max_replicas_per_node", "deploy.restart_policy.max_attempts",
		"deploy.update_config.parallelism", "deploy.rollback_config.parallelism", "healthcheck.retries",
		"deploy.resources.limits.pids",
	}
	ratioFields = []string{"deploy.update_config.max_failure_ratio", "deploy.rollback_config.max_failure_ratio"}
)

// supportedServiceKeys are the service keys berth acts on.
var supportedServiceKeys = map[string]bool{
	"image": true, "command": true, "entrypoint": true, "environment": true, "env_file": true,
	"labels": true, "user": true, "working_dir": true, "hostname": true, "healthcheck": true,
	"stop_signal": true, "stop_grace_period": true, "init": true, "read_only": true, "tmpfs": true,
	"cap_add": true, "cap_drop": true, "privileged": true, "devices": true, "sysctls": true,
	"ulimits": true, "networks": true, "ports": true, "volumes": true, "secrets": true,
	"configs": true, "deploy": true, "extends": true,
	"security_opt": true, "dns": true, "dns_search": true, "dns_opt": true,
	"logging": true,
}

// ignoredServiceKeys are Compose keys a stack cannot act on, with what to do instead.
// Anything neither here nor supported gets a generic "ignored" warning.
var ignoredServiceKeys = map[string]string{
	"build":           "berth does not build images: build and push the image, then set `image`",
	"container_name":  "remove it: tasks are named <stack>_<service>.<slot>",
	"depends_on":      "services of a stack start independently: use healthchecks and retries, or depends_on between stacks in berth.yaml",
	"links":           "remove it: services on a shared network reach each other by service name",
	"external_links":  "remove it: services on a shared network reach each other by service name",
	"network_mode":    "attach the service to stack networks instead",
	"restart":         "use deploy.restart_policy",
	"scale":           "use deploy.replicas",
	"mem_limit":       "use deploy.resources.limits.memory",
	"mem_reservation": "use deploy.resources.reservations.memory",
	"cpus":            "use deploy.resources.limits.cpus",
	"pids_limit":      "use deploy.resources.limits.pids",
	"expose":          "remove it: services on one network reach every port of each other",
	"profiles":        "a stack deploys every service: split optional services into their own stack",
	"label_file":      "write the labels under `labels`",
}

var supportedTopLevel = map[string]bool{"name": true, "services": true, "networks": true, "volumes": true, "secrets": true, "configs": true, "include": true}

var supportedResourceKeys = map[string]map[string]bool{
	"networks": {"name": true, "driver": true, "driver_opts": true, "internal": true, "attachable": true, "external": true, "ipam": true, "labels": true},
	"volumes":  {"name": true, "driver": true, "driver_opts": true, "external": true, "labels": true},
	"secrets":  {"name": true, "file": true, "environment": true, "external": true, "labels": true},
	"configs":  {"name": true, "file": true, "environment": true, "content": true, "external": true, "labels": true},
}

// lintModel checks the merged, interpolated model: value formats (removing bad values so
// decoding can go on and find the rest) and keys berth does not act on (warnings).
func lintModel(model map[string]any, ps *problems) {
	for _, key := range slices.Sorted(maps.Keys(model)) {
		if !supportedTopLevel[key] && !strings.HasPrefix(key, "x-") {
			ps.warnf("", key, "remove it", "berth does not act on the top-level key `%s`: it is ignored", key)
		}
	}
	for _, section := range slices.Sorted(maps.Keys(supportedResourceKeys)) {
		objects, _ := model[section].(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(objects)) {
			obj, _ := objects[name].(map[string]any)
			for _, key := range slices.Sorted(maps.Keys(obj)) {
				if !supportedResourceKeys[section][key] && !strings.HasPrefix(key, "x-") {
					ps.warnf("", section+"."+name+"."+key, "remove it", "berth does not act on `%s` here: it is ignored", key)
				}
			}
		}
	}
	services, _ := model["services"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(services)) {
		svc, ok := services[name].(map[string]any)
		if !ok {
			continue
		}
		for _, key := range slices.Sorted(maps.Keys(svc)) {
			switch {
			case supportedServiceKeys[key] || strings.HasPrefix(key, "x-"):
			case key == "build" && svc["image"] == nil:
				// The error that the image is missing says that berth does not build.
			case ignoredServiceKeys[key] != "":
				ps.warnf(name, key, ignoredServiceKeys[key], "berth does not act on `%s`: it is ignored", key)
			default:
				ps.warnf(name, key, "remove it, or open an issue if your stack needs it", "berth does not act on `%s` yet: it is ignored", key)
			}
		}
		lintValues(name, svc, ps)
	}
}

func lintValues(service string, svc map[string]any, ps *problems) {
	check := func(fields []string, parse func(any) error, fix string) {
		for _, field := range fields {
			parent, key, v, ok := lookupPath(svc, field)
			if !ok {
				continue
			}
			if err := parse(v); err != nil {
				ps.errorf(service, field, fix, "%v", err)
				delete(parent, key)
			}
		}
	}
	check(durationFields, parseDurationValue, "write a duration such as 10s, 1m30s or 2h")
	check(sizeFields, parseSizeValue, "write a size such as 512M, 1G or a number of bytes")
	check(cpuFields, parseCPUValue, "write a number of cores such as 0.5 or 2")
	check(countFields, parseCountValue, "write a whole number, 0 or more")
	check(ratioFields, parseRatioValue, "write a fraction between 0 and 1, such as 0.1")
}

// lookupPath walks a dotted path of nested maps.
func lookupPath(m map[string]any, dotted string) (parent map[string]any, key string, value any, ok bool) {
	parts := strings.Split(dotted, ".")
	for _, p := range parts[:len(parts)-1] {
		m, ok = m[p].(map[string]any)
		if !ok {
			return nil, "", nil, false
		}
	}
	key = parts[len(parts)-1]
	value, ok = m[key]
	return m, key, value, ok
}

func parseDurationValue(v any) error {
	s := fmt.Sprint(v)
	d, err := str2duration.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration", s)
	}
	if d < 0 {
		return fmt.Errorf("%q is negative", s)
	}
	return nil
}

func parseSizeValue(v any) error {
	s := fmt.Sprint(v)
	n, err := units.RAMInBytes(s)
	if err != nil {
		return fmt.Errorf("%q is not a size", s)
	}
	if n < 0 {
		return fmt.Errorf("%q is negative", s)
	}
	return nil
}

func parseCPUValue(v any) error {
	s := fmt.Sprint(v)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("%q is not a number of CPUs", s)
	}
	if f < 0 {
		return fmt.Errorf("%q is negative", s)
	}
	return nil
}

func parseCountValue(v any) error {
	s := fmt.Sprint(v)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}
	if n < 0 {
		return fmt.Errorf("%d is negative", n)
	}
	return nil
}

func parseRatioValue(v any) error {
	s := fmt.Sprint(v)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
		return fmt.Errorf("%q is not a fraction between 0 and 1", s)
	}
	return nil
}
