package spec_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/berthd/berth/spec"
)

// withService wraps lines of a service body (indented by four spaces) into a one-service
// stack named web with image nginx, followed by optional top-level YAML.
func withService(body string, topLevel ...string) []string {
	return []string{"services:\n  web:\n    image: nginx\n" + body + strings.Join(topLevel, "")}
}

func TestValidateDeployMode(t *testing.T) {
	runProblemCases(t, []problemCase{
		{
			name: "every Swarm mode is accepted", noWarnings: true,
			files: []string{`
services:
  a: {image: x, deploy: {mode: replicated, replicas: 2}}
  b: {image: x, deploy: {mode: global}}
  c: {image: x, deploy: {mode: replicated-job, replicas: 3}}
  d: {image: x, deploy: {mode: global-job}}
`},
		},
		{
			name:  "typo suggests the mode",
			files: withService("    deploy: {mode: globl}\n"),
			errs:  []want{{"web", "deploy.mode", `mode "globl" is not valid`}, {"web", "deploy.mode", `did you mean "global"?`}},
		},
		{
			name:  "unrelated word lists the valid modes",
			files: withService("    deploy: {mode: everywhere}\n"),
			errs:  []want{{"web", "deploy.mode", "use one of: replicated, global, replicated-job, global-job"}},
		},
		{
			name:  "replicas with global is dropped with a warning",
			files: withService("    deploy: {mode: global, replicas: 3}\n"),
			warns: []want{{"web", "deploy.replicas", "replicas is ignored in global mode"}},
			check: func(t *testing.T, st *spec.Stack) {
				if r := service(t, st, "web").Deploy.Replicas; r != nil {
					t.Errorf("replicas = %d, want nil for a global service", *r)
				}
			},
		},
		{
			name:  "max_replicas_per_node with global is dropped with a warning",
			files: withService("    deploy: {mode: global-job, placement: {max_replicas_per_node: 1}}\n"),
			warns: []want{{"web", "deploy.placement.max_replicas_per_node", "ignored in global-job mode"}},
			check: func(t *testing.T, st *spec.Stack) {
				if m := service(t, st, "web").Deploy.Placement.MaxReplicasPerNode; m != 0 {
					t.Errorf("max_replicas_per_node = %d, want 0 for a global service", m)
				}
			},
		},
		{
			name: "max_replicas_per_node with replicated is kept", noWarnings: true,
			files: withService("    deploy: {replicas: 5, placement: {max_replicas_per_node: 1}}\n"),
			check: func(t *testing.T, st *spec.Stack) {
				if m := service(t, st, "web").Deploy.Placement.MaxReplicasPerNode; m != 1 {
					t.Errorf("max_replicas_per_node = %d, want 1", m)
				}
			},
		},
	})
}

// Keys written one level off are reported with the place they belong, and removed so the
// rest of the file is still checked: the same error lists the file's other problems.
func TestValidateMisplacedKeys(t *testing.T) {
	cases := []struct {
		key, yaml, field, right string
	}{
		{"max_replicas_per_node", "    deploy:\n      max_replicas_per_node: 1\n", "deploy.max_replicas_per_node", "deploy.placement.max_replicas_per_node"},
		{"constraints", "    deploy:\n      constraints: [node.role==manager]\n", "deploy.constraints", "deploy.placement.constraints"},
		{"preferences", "    deploy:\n      preferences: [{spread: node.labels.zone}]\n", "deploy.preferences", "deploy.placement.preferences"},
		{"replicas", "    replicas: 3\n", "replicas", "deploy.replicas"},
		{"placement", "    placement: {constraints: [node.role==manager]}\n", "placement", "deploy.placement"},
		{"update_config", "    update_config: {parallelism: 1}\n", "update_config", "deploy.update_config"},
		{"restart_policy", "    restart_policy: {condition: any}\n", "restart_policy", "deploy.restart_policy"},
		{"resources", "    resources: {limits: {memory: 1G}}\n", "resources", "deploy.resources"},
	}
	var pc []problemCase
	for _, c := range cases {
		pc = append(pc, problemCase{
			name: c.key + " alone",
			// Pruning leaves an empty deploy map, which must load without further noise.
			files: withService(c.yaml),
			errs:  []want{{"web", c.field, "move it to " + c.right}, {"web", c.field, "compose.yml: stack app, service web, " + c.field + ": `" + c.field + "` is not valid here"}},
		}, problemCase{
			name: c.key + " with other problems in the same file",
			files: []string{"services:\n  web:\n    image: nginx\n    stop_grace_period: soon\n" + c.yaml +
				"    networks: [missing]\n  noimage: {}\n"},
			errs: []want{
				{"web", c.field, "move it to " + c.right},
				{"web", "stop_grace_period", `"soon" is not a duration`},
				{"web", "networks.missing", `network "missing" is not defined`},
				{"noimage", "image", "image is required"},
			},
		})
	}
	pc = append(pc, problemCase{
		name:  "misplaced key in an override file names that file",
		files: []string{"services:\n  web:\n    image: nginx\n", "services:\n  web:\n    deploy:\n      max_replicas_per_node: 2\n"},
		errs:  []want{{"web", "deploy.max_replicas_per_node", "compose.override1.yml: stack app"}},
	})
	runProblemCases(t, pc)
}

func TestValidateConstraints(t *testing.T) {
	canonical := []struct{ written, want string }{
		{"node.labels.os==linux", "node.labels.os == linux"},
		{"  node.role   !=   manager ", "node.role != manager"},
		{"node.role == Worker", "node.role == worker"},
		{"NODE.HOSTNAME == web-1", "node.hostname == web-1"},
		{"engine.labels.gpu == true", "engine.labels.gpu == true"},
		{"node.platform.os == linux", "node.platform.os == linux"},
		{"node.ip == 10.0.0.0/8", "node.ip == 10.0.0.0/8"},
	}
	var cases []problemCase
	for _, c := range canonical {
		cases = append(cases, problemCase{
			name:       "valid " + c.written,
			files:      withService(fmt.Sprintf("    deploy: {placement: {constraints: [%q]}}\n", c.written)),
			noWarnings: true,
			check: func(t *testing.T, st *spec.Stack) {
				requireEqual(t, "constraints", service(t, st, "web").Deploy.Placement.Constraints, []string{c.want})
			},
		})
	}
	invalid := []struct{ name, expr, text string }{
		{"label typo", "node.label.os == linux", `did you mean "node.labels.os == linux"?`},
		{"unknown key", "node.colour == red", `unknown key "node.colour"`},
		{"single equals", "node.role = manager", `did you mean "node.role == manager"?`},
		{"unsupported operator", "node.labels.size >= 3", `operator ">=" is not supported`},
		{"missing value", "node.role ==", "missing value"},
		{"bad role", "node.role == boss", "node.role must be manager or worker"},
		{"quoted value", `node.labels.os == "linux"`, "must not be quoted"},
	}
	for _, c := range invalid {
		cases = append(cases, problemCase{
			name:  "invalid " + c.name,
			files: withService(fmt.Sprintf("    deploy: {placement: {constraints: ['node.role == worker', %q]}}\n", c.expr)),
			errs:  []want{{"web", "deploy.placement.constraints[1]", c.text}},
		})
	}
	runProblemCases(t, cases)
}

func TestValidatePreferences(t *testing.T) {
	runProblemCases(t, []problemCase{
		{
			name:  "label keys keep their order",
			files: withService("    deploy: {placement: {preferences: [{spread: node.labels.zone}, {spread: engine.labels.rack}]}}\n"),
			check: func(t *testing.T, st *spec.Stack) {
				requireEqual(t, "preferences", service(t, st, "web").Deploy.Placement.Preferences,
					[]spec.Preference{{Spread: "node.labels.zone"}, {Spread: "engine.labels.rack"}})
			},
		},
		{
			name:  "non-label key",
			files: withService("    deploy: {placement: {preferences: [{spread: node.hostname}]}}\n"),
			errs:  []want{{"web", "deploy.placement.preferences[0].spread", "only label keys"}},
		},
		{
			name:  "CLI syntax pasted",
			files: withService("    deploy: {placement: {preferences: [{spread: spread=node.labels.zone}]}}\n"),
			errs:  []want{{"web", "deploy.placement.preferences[0].spread", "without the spread= prefix"}},
		},
		{
			name:  "misspelt label prefix",
			files: withService("    deploy: {placement: {preferences: [{spread: node.labls.zone}]}}\n"),
			errs:  []want{{"web", "deploy.placement.preferences[0].spread", `did you mean "node.labels.zone"?`}},
		},
	})
}

func TestValidateReferences(t *testing.T) {
	const defined = `
networks: {front: {}, ext: {external: true}}
volumes: {data: {}}
secrets: {db_password: {external: true}}
configs: {nginx_conf: {content: x}}
`
	runProblemCases(t, []problemCase{
		{
			name:       "defined objects, external ones included",
			files:      withService("    networks: [front, ext]\n    volumes: [data:/data]\n    secrets: [db_password]\n    configs: [nginx_conf]\n", defined),
			noWarnings: true,
		},
		{
			name:  "undefined network with a near name",
			files: withService("    networks: [frnt]\n", defined),
			errs:  []want{{"web", "networks.frnt", `network "frnt" is not defined`}, {"web", "networks.frnt", `did you mean "front"?`}},
		},
		{
			name:  "undefined network with nothing near",
			files: withService("    networks: [backend]\n", defined),
			errs:  []want{{"web", "networks.backend", "define it under the top-level `networks:` key"}},
		},
		{
			name:  "undefined volume",
			files: withService("    volumes: [dta:/data]\n", defined),
			errs:  []want{{"web", "volumes[0].source", `volume "dta" is not defined`}, {"web", "volumes[0].source", `did you mean "data"?`}},
		},
		{
			name:  "undefined secret",
			files: withService("    secrets: [db_pasword]\n", defined),
			errs:  []want{{"web", "secrets[0]", `secret "db_pasword" is not defined`}, {"web", "secrets[0]", `did you mean "db_password"?`}},
		},
		{
			name:  "undefined config",
			files: withService("    configs: [app_conf]\n", defined),
			errs:  []want{{"web", "configs[0]", `config "app_conf" is not defined`}, {"web", "configs[0]", "top-level `configs:` key"}},
		},
		{
			name:  "secret file missing",
			files: withService("    secrets: [tls]\n", "secrets:\n  tls: {file: certs/key.pem}\n"),
			fsys:  fstest.MapFS{"certs/cert.pem": {Data: []byte("x")}},
			errs:  []want{{"", "secrets.tls.file", "certs/key.pem does not exist"}},
		},
		{
			// The Compose loader refuses this before berth's own check would.
			name:  "secret without a source",
			files: withService("", "secrets:\n  tls: {labels: {a: b}}\n"),
			errs:  []want{{"", "secrets.tls", "secrets.tls: one of file|environment must be set"}},
		},
	})
}

func TestValidateEndpointMode(t *testing.T) {
	runProblemCases(t, []problemCase{
		{
			name:  "dnsrr with a port published through ingress",
			files: withService("    ports: [\"8080:80\"]\n    deploy: {endpoint_mode: dnsrr}\n"),
			errs:  []want{{"web", "ports[0]", "endpoint_mode is dnsrr"}, {"web", "ports[0]", "`mode: host`"}},
		},
		{
			name:       "dnsrr with a host-mode port",
			files:      withService("    ports: [{target: 80, published: 8080, mode: host}]\n    deploy: {endpoint_mode: dnsrr}\n"),
			noWarnings: true,
		},
		{
			name:  "dnsrr with an unpublished port",
			files: withService("    ports: [\"80\"]\n    deploy: {endpoint_mode: dnsrr}\n"),
		},
		{
			name:  "vip with ingress",
			files: withService("    ports: [\"8080:80\"]\n    deploy: {endpoint_mode: vip}\n"),
		},
	})
}

func TestValidateDNS(t *testing.T) {
	runProblemCases(t, []problemCase{
		{
			name:       "dns, dns_search and dns_opt",
			files:      withService("    dns: [192.0.2.53, \"2001:db8::53\"]\n    dns_search: [svc.example.com, .]\n    dns_opt: [ndots:2, edns0]\n"),
			noWarnings: true,
			check: func(t *testing.T, st *spec.Stack) {
				s := st.Services["web"]
				if fmt.Sprint(s.DNS, s.DNSSearch, s.DNSOptions) != "[192.0.2.53 2001:db8::53] [svc.example.com .] [ndots:2 edns0]" {
					t.Errorf("dns %q, dns_search %q, dns_opt %q", s.DNS, s.DNSSearch, s.DNSOptions)
				}
			},
		},
		{
			name:  "a dns server that is not an address",
			files: withService("    dns: [192.0.2.53, dns.example.com]\n"),
			errs:  []want{{"web", "dns[1]", "\"dns.example.com\" is not an IP address"}},
		},
		{
			name:  "a search domain that is not a domain",
			files: withService("    dns_search: [\"a..b\"]\n"),
			errs:  []want{{"web", "dns_search[0]", "is not a domain name"}},
		},
		{
			name:  "two options in one",
			files: withService("    dns_opt: [\"ndots:2 edns0\"]\n"),
			errs:  []want{{"web", "dns_opt[0]", "is not a resolver option"}},
		},
	})
}

func TestValidateEnumValues(t *testing.T) {
	var cases []problemCase
	for _, c := range []string{"none", "on-failure", "any"} {
		cases = append(cases, problemCase{name: "restart condition " + c, files: withService("    deploy: {restart_policy: {condition: " + c + "}}\n")})
	}
	for _, a := range []string{"pause", "continue", "rollback"} {
		cases = append(cases, problemCase{name: "update failure_action " + a, files: withService("    deploy: {update_config: {failure_action: " + a + "}}\n")})
	}
	for _, a := range []string{"pause", "continue"} {
		cases = append(cases, problemCase{name: "rollback failure_action " + a, files: withService("    deploy: {rollback_config: {failure_action: " + a + "}}\n")})
	}
	for _, o := range []string{"stop-first", "start-first"} {
		cases = append(cases, problemCase{
			name:  "order " + o,
			files: withService("    deploy: {update_config: {order: " + o + "}, rollback_config: {order: " + o + "}}\n"),
		})
	}
	cases = append(cases,
		problemCase{
			name:  "restart condition typo",
			files: withService("    deploy: {restart_policy: {condition: on-failur}}\n"),
			errs:  []want{{"web", "deploy.restart_policy.condition", `did you mean "on-failure"?`}},
		},
		problemCase{
			name:  "restart condition from docker run",
			files: withService("    deploy: {restart_policy: {condition: always}}\n"),
			errs:  []want{{"web", "deploy.restart_policy.condition", "use one of: none, on-failure, any"}},
		},
		problemCase{
			name:  "update failure_action unknown",
			files: withService("    deploy: {update_config: {failure_action: explode}}\n"),
			errs:  []want{{"web", "deploy.update_config.failure_action", `failure action "explode" is not valid`}},
		},
		problemCase{
			// A rollback cannot roll back.
			name:  "rollback failure_action rollback",
			files: withService("    deploy: {rollback_config: {failure_action: rollback}}\n"),
			errs:  []want{{"web", "deploy.rollback_config.failure_action", "use one of: pause, continue"}},
		},
		problemCase{
			// The Compose schema already knows the orders, so its message is the one shown.
			name:  "order unknown",
			files: withService("    deploy: {update_config: {order: random}}\n"),
			errs:  []want{{"web", "deploy.update_config.order", `"random" is not valid here: it must be one of 'start-first', 'stop-first'`}},
		},
		problemCase{
			name:  "healthcheck test kind",
			files: withService("    healthcheck: {test: [\"RUN\", \"true\"]}\n"),
			errs:  []want{{"web", "healthcheck.test[0]", `healthcheck test kind "RUN" is not valid`}},
		},
		problemCase{
			name:  "network driver",
			files: withService("", "networks:\n  n: {driver: macvlan}\n  b: {driver: bridge}\n"),
			errs:  []want{{"", "networks.n.driver", `network driver "macvlan" is not valid`}},
		},
	)
	runProblemCases(t, cases)
}

// Values in the wrong format are each reported with their field path, not only the first
// one the decoder trips over.
func TestValidateValueFormats(t *testing.T) {
	cases := []struct {
		name, yaml, field, text string
	}{
		{"healthcheck interval", "    healthcheck: {test: [CMD, 'true'], interval: 5x}\n", "healthcheck.interval", `"5x" is not a duration`},
		{"healthcheck retries negative", "    healthcheck: {test: [CMD, 'true'], retries: -1}\n", "healthcheck.retries", "-1 is negative"},
		{"stop_grace_period", "    stop_grace_period: 10 seconds\n", "stop_grace_period", `"10 seconds" is not a duration`},
		{"restart delay", "    deploy: {restart_policy: {delay: soon}}\n", "deploy.restart_policy.delay", "not a duration"},
		{"update monitor", "    deploy: {update_config: {monitor: 1x}}\n", "deploy.update_config.monitor", "not a duration"},
		{"memory", "    deploy: {resources: {limits: {memory: 12qq}}}\n", "deploy.resources.limits.memory", `"12qq" is not a size`},
		{"reservation memory", "    deploy: {resources: {reservations: {memory: lots}}}\n", "deploy.resources.reservations.memory", "not a size"},
		{"cpus", "    deploy: {resources: {limits: {cpus: abc}}}\n", "deploy.resources.limits.cpus", `"abc" is not a number of CPUs`},
		{"negative cpus", "    deploy: {resources: {reservations: {cpus: '-1'}}}\n", "deploy.resources.reservations.cpus", "is negative"},
		{"negative replicas", "    deploy: {replicas: -1}\n", "deploy.replicas", "-1 is negative"},
		{"negative max_attempts", "    deploy: {restart_policy: {max_attempts: -3}}\n", "deploy.restart_policy.max_attempts", "-3 is negative"},
		{"negative parallelism", "    deploy: {update_config: {parallelism: -2}}\n", "deploy.update_config.parallelism", "-2 is negative"},
		{"negative rollback parallelism", "    deploy: {rollback_config: {parallelism: -2}}\n", "deploy.rollback_config.parallelism", "-2 is negative"},
		{"max_failure_ratio above 1", "    deploy: {update_config: {max_failure_ratio: 2}}\n", "deploy.update_config.max_failure_ratio", "not a fraction between 0 and 1"},
		{"negative max_failure_ratio", "    deploy: {rollback_config: {max_failure_ratio: -0.5}}\n", "deploy.rollback_config.max_failure_ratio", "not a fraction"},
	}
	var pc []problemCase
	for _, c := range cases {
		pc = append(pc, problemCase{name: c.name, files: withService(c.yaml), errs: []want{{"web", c.field, c.text}}})
	}
	pc = append(pc, problemCase{
		name: "valid values of every format", noWarnings: true,
		files: withService(`    stop_grace_period: 1m30s
    healthcheck: {test: [CMD, 'true'], interval: 500ms, timeout: 1h, start_period: 0s, retries: 0}
    deploy:
      replicas: 0
      resources: {limits: {cpus: 2, memory: "1073741824", pids: 0}, reservations: {cpus: "0.25", memory: 1.5G}}
      restart_policy: {delay: 0s, window: 1h30m, max_attempts: 0}
      update_config: {parallelism: 0, max_failure_ratio: 1, delay: 1s, monitor: 10s}
      rollback_config: {max_failure_ratio: 0}
`),
	})
	runProblemCases(t, pc)
}

func TestValidateServiceAndObjects(t *testing.T) {
	runProblemCases(t, []problemCase{
		{
			name:  "missing image",
			files: []string{"services:\n  web:\n    command: [\"true\"]\n"},
			errs:  []want{{"web", "image", "image is required"}, {"web", "image", "berth does not build images"}},
		},
		{
			name:  "duplicate published port",
			files: withService("    ports: [\"80:80\", \"80:8080\"]\n"),
			errs:  []want{{"web", "ports[1].published", "port 80/tcp is already published by ports[0]"}},
		},
		{
			name:  "same port number on tcp and udp",
			files: withService("    ports: [\"53:53/tcp\", \"53:53/udp\"]\n"),
		},
		{
			name:  "bad subnet",
			files: withService("", "networks:\n  n:\n    ipam: {config: [{subnet: 10.0.0.0/24}, {subnet: 10.0.0.0/33}]}\n"),
			errs:  []want{{"", "networks.n.ipam.config[1].subnet", `"10.0.0.0/33" is not a subnet`}},
		},
		{
			name:  "encrypted overlay",
			files: withService("", "networks:\n  n: {driver: overlay, driver_opts: {encrypted: \"true\"}}\n"),
			errs: []want{
				{"", "networks.n.driver_opts.encrypted", "network app_n asks for an encrypted overlay"},
				{"", "networks.n.driver_opts.encrypted", "neither IPsec ESP nor WireGuard"},
				{"", "networks.n.driver_opts.encrypted", "remove the encrypted option"},
			},
		},
		{
			// Docker encrypts on the key alone.
			name:  "encrypted overlay with an empty value",
			files: withService("", "networks:\n  n:\n    driver_opts:\n      encrypted: \"\"\n"),
			errs:  []want{{"", "networks.n.driver_opts.encrypted", "encrypted overlay"}},
		},
		{
			name:  "other network driver options",
			files: withService("", "networks:\n  n: {driver_opts: {com.docker.network.driver.mtu: \"1400\"}}\n"),
		},
		{
			name:  "local volume driver",
			files: withService("", "volumes:\n  v: {driver: local, driver_opts: {type: nfs, o: 'addr=10.0.0.5', device: ':/export'}}\n"),
		},
		{
			name:  "bind volume",
			files: withService("", "volumes:\n  v: {driver_opts: {type: none, o: bind, device: /srv/shared}}\n"),
		},
		{
			name:  "unknown volume option",
			files: withService("", "volumes:\n  v: {driver_opts: {type: nfs, o: 'addr=10.0.0.5', device: ':/export', quota: 10G}}\n"),
			errs:  []want{{"", "volumes.v.driver_opts.quota", `unknown volume option "quota"`}, {"", "volumes.v.driver_opts.quota", "type, o, device and size"}},
		},
		{
			name:  "volume type without device",
			files: withService("", "volumes:\n  v: {driver_opts: {type: tmpfs, o: size=10m}}\n"),
			errs:  []want{{"", "volumes.v.driver_opts", "needs type and device"}, {"", "volumes.v.driver_opts", "give both type and device"}},
		},
		{
			name:  "nfs without server",
			files: withService("", "volumes:\n  v: {driver_opts: {type: nfs, o: rw, device: ':/export'}}\n"),
			errs:  []want{{"", "volumes.v.driver_opts.o", `device ":/export" names no server`}, {"", "volumes.v.driver_opts.o", "add addr=HOST"}},
		},
		{
			name:  "npipe mount",
			files: withService("    volumes: [{type: npipe, source: '\\\\.\\pipe\\docker_engine', target: /pipe}]\n"),
			errs:  []want{{"web", "volumes[0].type", `mount type "npipe" is not supported by berth`}},
		},
	})
}

// One file with every kind of mistake gives one ValidationError listing all of them.
func TestValidateCollectsEveryProblem(t *testing.T) {
	const file = `
services:
  web:
    image: nginx
    stop_grace_period: 10q
    healthcheck:
      test: ["CMD", "true"]
      interval: 5x
    networks: [fronte]
    volumes:
      - dta:/data
      - {type: npipe, source: 'p', target: /pipe}
    secrets: [pw2]
    configs: [cfg]
    ports: ["80:80", "80:81"]
    deploy:
      mode: globl
      endpoint_mode: dnsrr
      max_replicas_per_node: 2
      placement:
        constraints: ["node.label.os == linux"]
        preferences: [{spread: node.id}]
      resources:
        limits: {cpus: abc, memory: 12qq}
      restart_policy: {condition: always, max_attempts: -1}
      update_config: {failure_action: explode, parallelism: -2, max_failure_ratio: 2}
      rollback_config: {failure_action: rollback}
  noimage: {}
  worker: {image: busybox, networks: [nope]}
networks:
  front: {}
  bad: {ipam: {config: [{subnet: 10.0.0.0/33}]}}
volumes:
  data: {}
  nfs: {driver: nfsdriver}
secrets:
  pw: {file: missing.txt}
`
	wants := []want{
		{"web", "deploy.max_replicas_per_node", "move it to deploy.placement.max_replicas_per_node"},
		{"web", "healthcheck.interval", "not a duration"},
		{"web", "stop_grace_period", "not a duration"},
		{"web", "deploy.resources.limits.memory", "not a size"},
		{"web", "deploy.resources.limits.cpus", "not a number of CPUs"},
		{"web", "deploy.restart_policy.max_attempts", "negative"},
		{"web", "deploy.update_config.parallelism", "negative"},
		{"web", "deploy.update_config.max_failure_ratio", "not a fraction"},
		{"web", "volumes[1].type", "npipe"},
		{"", "secrets.pw.file", "missing.txt does not exist"},
		{"noimage", "image", "image is required"},
		{"web", "deploy.mode", `did you mean "global"?`},
		{"web", "deploy.placement.constraints[0]", "node.labels.os"},
		{"web", "deploy.placement.preferences[0].spread", "only label keys"},
		{"web", "deploy.restart_policy.condition", "always"},
		{"web", "deploy.update_config.failure_action", "explode"},
		{"web", "deploy.rollback_config.failure_action", "rollback"},
		{"web", "ports[0]", "endpoint_mode is dnsrr"},
		{"web", "ports[1]", "endpoint_mode is dnsrr"},
		{"web", "ports[1].published", "already published by ports[0]"},
		{"web", "networks.fronte", `did you mean "front"?`},
		{"worker", "networks.nope", `network "nope" is not defined`},
		{"web", "volumes[0].source", `did you mean "data"?`},
		{"web", "secrets[0]", `did you mean "pw"?`},
		{"web", "configs[0]", `config "cfg" is not defined`},
		{"", "networks.bad.ipam.config[0].subnet", "not a subnet"},
		{"", "volumes.nfs.driver", "berth has no volume plugins"},
	}
	o := composeOpts(file)
	o.FS = fstest.MapFS{}
	ve, _ := mustFail(t, o)
	requireProblems(t, "error", ve.Problems, wants)
	if len(ve.Problems) != len(wants) {
		t.Errorf("got %d problems, want %d:\n%s", len(ve.Problems), len(wants), listProblems(ve.Problems))
	}
	if !strings.HasPrefix(ve.Error(), fmt.Sprintf("%d problems:", len(wants))) {
		t.Errorf("Error() does not start with the count: %q", ve.Error()[:min(60, len(ve.Error()))])
	}
	for _, p := range ve.Problems {
		if p.Stack != testStack {
			t.Errorf("problem %q has stack %q, want %q", p.String(), p.Stack, testStack)
		}
	}
}

// The same invalid input must give the same report, so that a rejected push or a sync
// status does not change between two runs over one revision.
func TestValidateProblemOrderIsStable(t *testing.T) {
	const file = `
services:
  a: {image: x, volumes: [{type: npipe, source: p, target: /p}], environment: [UNSET_A, UNSET_B, UNSET_C]}
  b: {image: x, volumes: [{type: npipe, source: p, target: /p}]}
  c: {image: x, volumes: [{type: npipe, source: p, target: /p}]}
secrets:
  s1: {file: nope1}
  s2: {file: nope2}
  s3: {file: nope3}
`
	var first string
	for i := range 20 {
		_, warns, err := tryLoad(t, composeOpts(file))
		if err == nil {
			t.Fatal("want an error")
		}
		got := err.Error() + "\n" + listProblems(warns)
		if i == 0 {
			first = got
		} else if got != first {
			t.Fatalf("run %d reported differently:\n%s\nfirst run:\n%s", i, got, first)
		}
	}
}

// A problem's field path must point at the entry that is wrong. Compose-go keeps service
// networks in a map, so an index into berth's (re-ordered) slice would not.
func TestValidateUndefinedNetworkFieldPointsAtTheEntry(t *testing.T) {
	for range 10 {
		ve, _ := mustFail(t, composeOpts(withService("    networks: [front, zzz, nope]\n", "networks: {front: {}, zzz: {}}\n")...))
		var fields []string
		for _, p := range ve.Problems {
			fields = append(fields, p.Field)
		}
		if len(fields) != 1 || fields[0] != "networks.nope" {
			t.Fatalf("fields = %q, want networks.nope for the undefined network", fields)
		}
	}
}

// Problems reported for several services each name their own service.
func TestValidateProblemsNameTheirService(t *testing.T) {
	ve, _ := mustFail(t, composeOpts(`
services:
  api: {image: x, deploy: {mode: globl}}
  web: {image: x, deploy: {mode: replicatd}}
  worker: {image: x, networks: [nope]}
`))
	var got []string
	for _, p := range ve.Problems {
		got = append(got, p.Service+":"+p.Field)
	}
	slices.Sort(got)
	requireEqual(t, "problems", got, []string{"api:deploy.mode", "web:deploy.mode", "worker:networks.nope"})
}

// A service the Compose schema refuses does not hide the other services' problems.
func TestValidateSchemaErrorKeepsOtherServicesProblems(t *testing.T) {
	_, _, err := spec.Load(context.Background(), spec.LoadOptions{Stack: "app", Files: []spec.File{{Name: "compose.yml", Content: []byte(
		"services:\n  a:\n    image: x\n    ports: \"not a list\"\n  b:\n    image: y\n    deploy: {mode: globl}\n")}}})
	var ve *spec.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 2 {
		t.Fatalf("want 2 problems (a's ports, b's mode), got %v", err)
	}
	if ve.Problems[0].Service != "a" || ve.Problems[0].Field != "ports" || ve.Problems[1].Service != "b" || ve.Problems[1].Field != "deploy.mode" {
		t.Fatalf("problems: %+v", ve.Problems)
	}
}
