package spec

import (
	"context"
	"reflect"
	"testing"
)

// A unit made from the first unit of its shape is what the loader makes of it, and a
// unit that cannot be made so is loaded.
func TestShapeAgreesWithTheLoader(t *testing.T) {
	const tail = "networks:\n  front: {}\nvolumes:\n  data: {}\n"
	for _, tc := range []struct {
		name, yaml string
		// shared: every unit but the first is made from the first's result.
		shared bool
	}{
		{"image, command, entrypoint, environment, labels, replicas and published ports", `services:
  a:
    image: app:1.0
    command: ["/app", "--id", "1"]
    entrypoint: ["/bin/sh", "-c"]
    environment: {LOG: info, ID: "1"}
    labels: {team: blue}
    networks: [front]
    volumes: [data:/var/lib/app]
    ports: [{target: 80, published: 8080, mode: ingress}, {target: 81, published: 8081}]
    deploy: {replicas: 2, labels: {x: y}}
  b:
    image: app:2.0
    command: ["/app", "--id", "2"]
    entrypoint: ["/bin/bash", "-c"]
    environment: {LOG: debug, ID: "2"}
    labels: {team: red}
    networks: [front]
    volumes: [data:/var/lib/app]
    ports: [{target: 80, published: 9090, mode: ingress}, {target: 81, published: 9091}]
    deploy: {replicas: 0, labels: {x: y}}
`, true},
		{"same values", "services:\n  a: {image: app, deploy: {replicas: 1}}\n  b: {image: app, deploy: {replicas: 1}}\n", true},
		{"environment as a list", "services:\n  a: {image: app, environment: ['0=x']}\n  b: {image: app, environment: ['0=y']}\n", false},
		{"environment keys that read as indices", "services:\n  a: {image: app, environment: {'#0': x}}\n  b: {image: app, environment: {'#0': y}}\n", false},
		{"labels as a list", "services:\n  a: {image: app, labels: ['team=blue']}\n  b: {image: app, labels: ['team=red']}\n", false},
		{"ports in short syntax", "services:\n  a: {image: app, ports: ['8080:80']}\n  b: {image: app, ports: ['9090:80']}\n", false},
		{"ports equal but for the published one", "services:\n  a: {image: app, ports: [{target: 80, published: 1}, {target: 80, published: 2}]}\n  b: {image: app, ports: [{target: 80, published: 1}, {target: 80, published: 1}]}\n", false},
		{"replicas as text", "services:\n  a: {image: app, deploy: {replicas: '1'}}\n  b: {image: app, deploy: {replicas: '2'}}\n", false},
		{"negative replicas", "services:\n  a: {image: app, deploy: {replicas: 1}}\n  b: {image: app, deploy: {replicas: -1}}\n", false},
		{"a variable", "services:\n  a: {image: 'app:${TAG:-1}'}\n  b: {image: 'app:${TAG:-2}'}\n", false},
		{"a warning on the first", "services:\n  a: {image: app, scale: 2}\n  b: {image: app2, scale: 2}\n", false},
		{"an error on the first", "services:\n  a: {image: app, read_only: maybe}\n  b: {image: app2, read_only: maybe}\n", false},
		{"different shapes", "services:\n  a: {image: app, hostname: a}\n  b: {image: app, hostname: b}\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := LoadOptions{Stack: "st", Files: []File{{Name: "compose.yaml", Content: []byte(tc.yaml + tail)}}}
			env, err := interpolationEnv(opts)
			if err != nil {
				t.Fatal(err)
			}
			units, _ := splitUnits(opts, cacheKeyPrefix(opts, env), &problems{stack: opts.Stack})
			if len(units) < 2 {
				t.Fatalf("want a unit per service, got %d", len(units))
			}
			first := units[0]
			base := &shapeBase{result: loadUnit(context.Background(), first, opts, env), service: first.service, values: first.values}
			for _, u := range units[1:] {
				made, ok := base.resultFor(u.service, u.values)
				ok = ok && u.shape == first.shape && u.shape != [32]byte{}
				if ok != tc.shared {
					t.Fatalf("unit %s made from %s: %v, want %v", u.service, first.service, ok, tc.shared)
				}
				loaded := loadUnit(context.Background(), u, opts, env)
				if ok && !reflect.DeepEqual(made, loaded) {
					t.Errorf("unit %s:\nmade   %+v\nloaded %+v", u.service, made.project.Services, loaded.project.Services)
				}
				// Whatever path it takes, a load gives the loader's result.
				if got := loadShaped(context.Background(), u, &shapes{}, opts, env); !reflect.DeepEqual(got, loaded) {
					t.Errorf("unit %s: loadShaped differs from the loader", u.service)
				}
			}
		})
	}
}

// A whole stack loads to the same result with units made from their shape as with every
// unit loaded, in one load and from a cache.
func TestShapesGiveTheSameStack(t *testing.T) {
	// The generated stack of bench_test.go is in package spec_test: a smaller one here.
	content := []byte(`services:
  a: {image: app:1, command: [x, "1"], environment: {ID: "1"}, ports: [{target: 80, published: 1001}], deploy: {replicas: 1}}
  b: {image: app:2, command: [x, "2"], environment: {ID: "2"}, ports: [{target: 80, published: 1002}], deploy: {replicas: 2}}
  c: {image: app:3, command: [x, "3"], environment: {ID: "3"}, ports: [{target: 80, published: 1003}], deploy: {replicas: 3}}
`)
	opts := LoadOptions{Stack: "st", Files: []File{{Name: "compose.yaml", Content: content}}}
	env, err := interpolationEnv(opts)
	if err != nil {
		t.Fatal(err)
	}
	units, _ := splitUnits(opts, cacheKeyPrefix(opts, env), &problems{stack: opts.Stack})
	shaped := make([]*unitResult, len(units))
	loadUnits(context.Background(), units, shaped, opts, env)
	for i, u := range units {
		if loaded := loadUnit(context.Background(), u, opts, env); !reflect.DeepEqual(shaped[i], loaded) {
			t.Errorf("unit %s differs from the loader's", u.service)
		}
	}
	st, _, err := Load(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Cache = NewCache()
	for range 2 {
		cached, _, err := Load(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(st, cached) {
			t.Error("a cached load differs")
		}
	}
}
