package spec_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"gopkg.in/yaml.v3"

	"github.com/berthd/berth/spec"
)

// hashes loads a stack and returns every service's Hash by service name.
func hashes(t *testing.T, o spec.LoadOptions) map[string]string {
	t.Helper()
	st, _ := mustLoad(t, o)
	out := map[string]string{}
	for name, s := range st.Services {
		out[name] = s.Hash()
	}
	return out
}

// Two ways of writing the same desired state must hash the same, or every cosmetic edit
// in Git would restart tasks.
func TestHashSameForEquivalentStacks(t *testing.T) {
	cases := []struct {
		name string
		a, b []string
		env  map[string]string // for both sides
	}{
		{
			name: "key order, flow style, quoting and comments",
			a: []string{`
services:
  web:
    image: nginx:1.27
    environment:
      A: "1"
      B: "2"
    deploy:
      replicas: 2
      placement:
        constraints: [node.role==worker]
`},
			b: []string{`
# the web tier
services:
  web:
    deploy: {placement: {constraints: ["node.role == worker"]}, replicas: 2}   # inline
    environment: [B=2, A=1]
    image: "nginx:1.27"
`},
		},
		{
			name: "short and long port syntax",
			a:    []string{"services:\n  web:\n    image: nginx\n    ports: [\"8080:80\", \"53:53/udp\"]\n"},
			b: []string{`
services:
  web:
    image: nginx
    ports:
      - {target: 53, published: "53", protocol: udp, mode: ingress}
      - {target: 80, published: 8080}
`},
		},
		{
			name: "short and long volume syntax",
			a:    []string{"services:\n  web:\n    image: nginx\n    volumes: [\"/srv:/srv:ro\", \"cache:/cache\"]\nvolumes: {cache: {}}\n"},
			b: []string{`
services:
  web:
    image: nginx
    volumes:
      - {type: volume, source: cache, target: /cache}
      - {type: bind, source: /srv, target: /srv, read_only: true}
volumes: {cache: {}}
`},
		},
		{
			name: "order of sets: cap_add, constraints, networks, aliases, mounts, secrets",
			a: []string{`
services:
  web:
    image: nginx
    cap_add: [NET_ADMIN, SYS_TIME]
    networks:
      front: {aliases: [www, api]}
      back:
    volumes: [/a:/a, /b:/b]
    secrets: [s1, s2]
    deploy: {placement: {constraints: [node.role==worker, node.labels.os==linux]}}
networks: {front: {}, back: {}}
secrets: {s1: {external: true}, s2: {external: true}}
`},
			b: []string{`
services:
  web:
    image: nginx
    cap_add: [SYS_TIME, NET_ADMIN]
    networks:
      back:
      front: {aliases: [api, www]}
    volumes: [/b:/b, /a:/a]
    secrets: [s2, s1]
    deploy: {placement: {constraints: [node.labels.os==linux, node.role==worker]}}
networks: {back: {}, front: {}}
secrets: {s2: {external: true}, s1: {external: true}}
`},
		},
		{
			name: "interpolated and literal image",
			a:    []string{"services:\n  web:\n    image: nginx:${TAG}\n"},
			b:    []string{"services:\n  web:\n    image: nginx:1.27\n"},
			env:  map[string]string{"TAG": "1.27"},
		},
		{
			name: "command as a string and as a list",
			a:    []string{"services:\n  web:\n    image: nginx\n    command: nginx -g 'daemon off;'\n"},
			b:    []string{"services:\n  web:\n    image: nginx\n    command: [nginx, -g, daemon off;]\n"},
		},
		{
			name: "labels as a list and as a map",
			a:    []string{"services:\n  web:\n    image: nginx\n    labels: [a=1, b=2]\n"},
			b:    []string{"services:\n  web:\n    image: nginx\n    labels: {b: \"2\", a: \"1\"}\n"},
		},
		{
			name: "units written differently",
			a: []string{`
services:
  web:
    image: nginx
    stop_grace_period: 90s
    deploy: {resources: {limits: {cpus: "0.5", memory: 1G}}, restart_policy: {delay: 5000ms}}
`},
			b: []string{`
services:
  web:
    image: nginx
    stop_grace_period: 1m30s
    deploy: {resources: {limits: {cpus: 0.5, memory: 1024M}}, restart_policy: {delay: 5s}}
`},
		},
		{
			name: "Swarm defaults written out",
			a:    []string{"services:\n  web:\n    image: nginx\n"},
			b:    []string{"services:\n  web:\n    image: nginx\n    deploy: {mode: replicated, replicas: 1, endpoint_mode: vip}\n"},
		},
		{
			name: "one file and the same split over two",
			a:    []string{"services:\n  web:\n    image: nginx:1.27\n    deploy: {replicas: 3}\n"},
			b:    []string{"services:\n  web:\n    image: nginx:1.26\n", "services:\n  web:\n    image: nginx:1.27\n    deploy: {replicas: 3}\n"},
		},
		{
			name: "obsolete version key",
			a:    []string{"services:\n  web:\n    image: nginx\n"},
			b:    []string{"version: \"3.8\"\nservices:\n  web:\n    image: nginx\n"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			oa, ob := composeOpts(c.a...), composeOpts(c.b...)
			if c.env != nil {
				oa.Environment, ob.Environment = c.env, c.env
			}
			ha, hb := hashes(t, oa), hashes(t, ob)
			if !maps.Equal(ha, hb) {
				sa, _ := mustLoad(t, oa)
				sb, _ := mustLoad(t, ob)
				t.Errorf("hashes differ:\n a: %s\n b: %s", sa.Services["web"].Canonical(), sb.Services["web"].Canonical())
			}
		})
	}
}

// Every change that matters to a running task changes the hash of that service, and of
// that service only.
func TestHashChangesWithContent(t *testing.T) {
	const base = `
services:
  web:
    image: nginx:1.27
    command: [nginx, -g, daemon off;]
    environment: {LOG_LEVEL: info, MODE: prod}
    labels: {tier: front}
    ports: ["8080:80"]
    volumes: [data:/var/lib/data]
    secrets: [{source: db, target: db_password}]
    healthcheck: {test: [CMD, "true"], interval: 30s}
    networks: {front: {aliases: [www]}}
    deploy:
      replicas: 2
      labels: {owner: team-a}
      placement: {constraints: [node.labels.os==linux]}
  other:
    image: busybox
networks: {front: {}}
volumes: {data: {}, logs: {}}
secrets: {db: {external: true}, api: {external: true}}
`
	changes := []struct{ name, from, to string }{
		{"image", "image: nginx:1.27", "image: nginx:1.28"},
		{"one env value", "LOG_LEVEL: info", "LOG_LEVEL: debug"},
		{"env var added", "MODE: prod}", "MODE: prod, EXTRA: x}"},
		{"command", "command: [nginx, -g, daemon off;]", "command: [nginx, -g, daemon on;]"},
		{"mount source", "volumes: [data:/var/lib/data]", "volumes: [logs:/var/lib/data]"},
		{"mount target", "volumes: [data:/var/lib/data]", "volumes: [data:/data]"},
		{"mount read-only", "volumes: [data:/var/lib/data]", "volumes: [data:/var/lib/data:ro]"},
		{"replicas", "replicas: 2", "replicas: 3"},
		{"constraint", "node.labels.os==linux", "node.labels.os==windows"},
		{"service label", "labels: {tier: front}", "labels: {tier: back}"},
		{"deploy label", "labels: {owner: team-a}", "labels: {owner: team-b}"},
		{"published port", `"8080:80"`, `"8081:80"`},
		{"target port", `"8080:80"`, `"8080:81"`},
		{"port mode", `ports: ["8080:80"]`, `ports: [{target: 80, published: 8080, mode: host}]`},
		{"secret target", "target: db_password", "target: db_pw"},
		{"secret source", "source: db,", "source: api,"},
		{"healthcheck interval", "interval: 30s", "interval: 31s"},
		{"network alias", "aliases: [www]", "aliases: [web]"},
	}
	baseHashes := hashes(t, composeOpts(base))
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			changed := strings.Replace(base, c.from, c.to, 1)
			if changed == base {
				t.Fatalf("test bug: %q not found in the base stack", c.from)
			}
			h := hashes(t, composeOpts(changed))
			if h["web"] == baseHashes["web"] {
				t.Errorf("changing %s left the hash of web unchanged", c.name)
			}
			if h["other"] != baseHashes["other"] {
				t.Errorf("changing %s of web changed the hash of other", c.name)
			}
		})
	}
}

var hexHash = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestHashFormatAndStability(t *testing.T) {
	// Maps everywhere (environment, labels, ulimits, sysctls, networks) so that any
	// dependence on map iteration order shows up across loads.
	const file = `
services:
  web:
    image: nginx
    environment: {A: "1", B: "2", C: "3", D: "4", E: "5"}
    labels: {a: "1", b: "2", c: "3"}
    sysctls: {net.core.somaxconn: 1024, net.ipv4.ip_forward: 1}
    ulimits: {nofile: 1024, nproc: {soft: 1, hard: 2}, core: 0}
    networks: [n1, n2, n3, n4]
    ports: ["80:80", "443:443", "53:53/udp"]
    deploy: {labels: {x: "1", y: "2"}, placement: {constraints: [node.role==worker, node.labels.a==b, node.labels.c!=d]}}
networks: {n1: {}, n2: {}, n3: {}, n4: {}}
`
	first := hashes(t, composeOpts(file))
	for range 5 {
		if again := hashes(t, composeOpts(file)); !maps.Equal(first, again) {
			t.Fatalf("hash changed between two loads of the same files: %v vs %v", first, again)
		}
	}
	st, _ := mustLoad(t, composeOpts(file))
	web := service(t, st, "web")
	h := web.Hash()
	if !hexHash.MatchString(h) {
		t.Errorf("Hash() = %q, want 64 lower-case hex characters", h)
	}
	sum := sha256.Sum256(web.Canonical())
	if h != hex.EncodeToString(sum[:]) {
		t.Error("Hash() is not the SHA-256 of Canonical()")
	}
	if !json.Valid(web.Canonical()) {
		t.Errorf("Canonical() is not JSON: %s", web.Canonical())
	}
}

// A secret's bytes never leave Secret.Data: not through either encoding of the stack, the
// canonical form, warnings, or the problems of a stack that fails to load.
func TestSecretValuesNeverLeak(t *testing.T) {
	const fromFile = "S3CR3T-zebra-7741-file"
	const fromEnv = "S3CR3T-zebra-7741-env"
	const file = `
services:
  web:
    image: nginx
    secrets: [from_file, from_env, {source: from_file, target: /etc/app/key}]
    environment: [UNSET_ONE]
secrets:
  from_file: {file: ./secret.txt}
  from_env: {environment: DB_PASSWORD}
`
	opts := func(files ...string) spec.LoadOptions {
		o := composeOpts(files...)
		o.Environment = map[string]string{"DB_PASSWORD": fromEnv}
		o.FS = fstest.MapFS{"secret.txt": {Data: []byte(fromFile)}}
		return o
	}
	leaks := func(t *testing.T, what, text string) {
		t.Helper()
		for _, v := range []string{fromFile, fromEnv, "zebra-7741"} {
			if strings.Contains(text, v) {
				t.Errorf("%s contains the secret value %q:\n%s", what, v, text)
			}
		}
	}

	t.Run("loaded stack", func(t *testing.T) {
		st, warns := mustLoad(t, opts(file))
		// The values are loaded: the test would prove nothing if they were not.
		if string(st.Secrets["from_file"].Data) != fromFile || string(st.Secrets["from_env"].Data) != fromEnv {
			t.Fatalf("secret data not loaded: %q, %q", st.Secrets["from_file"].Data, st.Secrets["from_env"].Data)
		}
		j, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		leaks(t, "json.Marshal(stack)", string(j))
		y, err := yaml.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		leaks(t, "yaml.Marshal(stack)", string(y))
		for _, name := range slices.Sorted(maps.Keys(st.Services)) {
			leaks(t, "Canonical() of "+name, string(st.Services[name].Canonical()))
		}
		leaks(t, "warnings", listProblems(warns))
	})

	t.Run("stack that fails to load", func(t *testing.T) {
		// Problems next to the secrets: a missing image, an undefined secret, a bad value.
		bad := strings.Replace(file, "image: nginx", "stop_grace_period: forever", 1) +
			"  other:\n    image: x\n    secrets: [from_fil]\n"
		_, warns, err := tryLoad(t, opts(bad))
		if err == nil {
			t.Fatal("want a validation error")
		}
		leaks(t, "error", err.Error())
		leaks(t, "warnings", listProblems(warns))
		var ve *spec.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("%T is not a ValidationError", err)
		}
		j, _ := json.Marshal(ve.Problems)
		leaks(t, "problems as JSON", string(j))
	})

	t.Run("malformed env file holding the secret", func(t *testing.T) {
		o := opts(file)
		o.Environment = nil
		o.EnvFiles = []spec.File{{Name: "prod.env", Content: []byte("DB_PASSWORD=\"" + fromEnv + "\n")}}
		_, _, err := tryLoad(t, o)
		if err == nil {
			t.Fatal("want an error for the unterminated quote")
		}
		leaks(t, "error", err.Error())
	})
}
