package spec_test

import (
	"errors"
	"testing"

	"github.com/berthd/berth/spec"
)

// Volumes' driver and driver_opts as Docker's local driver takes them (issue 18).
func TestValidateVolumeDriverOpts(t *testing.T) {
	runProblemCases(t, []problemCase{
		{
			name:       "size of a tmpfs volume is applied",
			files:      withService("", "volumes:\n  v: {driver_opts: {type: tmpfs, device: tmpfs, size: 64m}}\n"),
			noWarnings: true,
		},
		{
			name:  "size of a plain volume is accepted with a warning",
			files: withService("", "volumes:\n  v: {driver_opts: {size: 10G}}\n"),
			warns: []want{{"", "volumes.v.driver_opts.size", "applies size only to a tmpfs volume"}, {"", "volumes.v.driver_opts.size", "make it a tmpfs"}},
		},
		{
			name:  "size of an NFS volume is accepted with a warning",
			files: withService("", "volumes:\n  v: {driver_opts: {type: nfs, o: 'addr=10.0.0.5', device: ':/export', size: 10G}}\n"),
			warns: []want{{"", "volumes.v.driver_opts.size", "this volume is not limited"}},
		},
		{
			name:  "size that is not a size",
			files: withService("", "volumes:\n  v: {driver_opts: {size: lots}}\n"),
			errs:  []want{{"", "volumes.v.driver_opts.size", `"lots" is not a size`}},
		},
		{
			name:  "o without type and device",
			files: withService("", "volumes:\n  v: {driver_opts: {o: size=10m}}\n"),
			errs:  []want{{"", "volumes.v.driver_opts", "needs type and device"}},
		},
	})
}

// A plugin driver gets one error, whatever its driver_opts.
func TestValidateVolumePluginDriver(t *testing.T) {
	cases := []struct {
		name, volumes string
		errs          int
	}{
		{"plugin with its own options", "  v: {driver: rexray/ebs, driver_opts: {size: '10', volumetype: gp2}}\n", 1},
		{"two plugin volumes", "  v: {driver: cloudstor:aws}\n  w: {driver: rexray}\n", 2},
		{"local driver", "  v: {driver: local, driver_opts: {type: none, o: bind, device: /srv}}\n", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _ := loadProblems(t, composeOpts(withService("", "volumes:\n"+c.volumes)...))
			if len(got) != c.errs {
				t.Fatalf("got %d errors, want %d:\n%s", len(got), c.errs, listProblems(got))
			}
			if c.errs > 0 {
				requireProblems(t, "error", got, []want{{"", "volumes.v.driver", "berth has no volume plugins"}, {"", "volumes.v.driver", "or a bind mount"}})
			}
		})
	}
}

// Relative bind sources resolve as `docker stack deploy -c` resolves them, and only then.
func TestLoadBindSources(t *testing.T) {
	cases := []struct {
		name             string
		volume           string
		bindDir, homeDir string
		want             string // the mount's source; "" when the load must fail
		problem, fix     string // of a failed load; default: the relative source's
	}{
		{name: "relative to the file's folder", volume: "./data:/data", bindDir: "/srv/app", want: "/srv/app/data"},
		{name: "parent folder", volume: "../shared:/data", bindDir: "/srv/app", want: "/srv/shared"},
		{name: "long syntax without ./", volume: "{type: bind, source: data, target: /data}", bindDir: "/srv/app", want: "/srv/app/data"},
		{name: "home folder", volume: "~/cache:/data", bindDir: "/srv/app", homeDir: "/home/ann", want: "/home/ann/cache"},
		{name: "absolute stays", volume: "/var/data:/data", want: "/var/data"},
		{name: "relative from Git is refused", volume: "./data:/data"},
		{name: "home from Git is refused", volume: "~/cache:/data", bindDir: "/srv/app"},
		{name: "another user's home is refused", volume: "~ann/cache:/data", bindDir: "/srv/app", homeDir: "/home/bob",
			problem: `bind source "~ann/cache" names another user's home folder, which berth does not look up`,
			fix:     "write the absolute host path, such as /home/USER/..."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := composeOpts(withService("    volumes: [\"" + c.volume + "\"]\n")...)
			if c.volume[0] == '{' {
				o = composeOpts(withService("    volumes: [" + c.volume + "]\n")...)
			}
			o.BindDir, o.HomeDir = c.bindDir, c.homeDir
			if c.want == "" {
				problem, fix := "is relative, and the nodes have no folder to resolve it against", "write an absolute host path, or use a named volume"
				if c.problem != "" {
					problem, fix = c.problem, c.fix
				}
				ve, _ := mustFail(t, o)
				requireProblems(t, "error", ve.Problems, []want{{"web", "volumes[0].source", problem}, {"web", "volumes[0].source", fix}})
				return
			}
			st, _ := mustLoad(t, o)
			if got := service(t, st, "web").Mounts[0].Source; got != c.want {
				t.Errorf("source = %q, want %q", got, c.want)
			}
		})
	}
}

// The manager does not trust the client: a relative bind source it receives is refused.
func TestValidateRelativeBindSource(t *testing.T) {
	for _, src := range []string{"./data", "/srv/data"} {
		t.Run(src, func(t *testing.T) {
			st, _ := mustLoad(t, composeOpts(withService("    volumes: [\"/x:/data\"]\n")...))
			st.Services["web"].Mounts[0].Source = src
			err := spec.Validate(st)
			if relative := src[0] != '/'; relative != (err != nil) {
				t.Fatalf("Validate(%q) = %v, want an error: %v", src, err, relative)
			}
		})
	}
}

// build: without image is one error, not a warning about build beside it.
func TestLoadBuildWithoutImage(t *testing.T) {
	cases := []struct {
		name, service string
		errs, warns   int
	}{
		{"build only", "  web: {build: .}\n", 1, 0},
		{"build and image", "  web: {build: ., image: nginx}\n", 0, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs, warns := loadProblems(t, composeOpts("services:\n"+c.service))
			if len(errs) != c.errs || len(warns) != c.warns {
				t.Fatalf("got errors:\n%swarnings:\n%swant %d and %d", listProblems(errs), listProblems(warns), c.errs, c.warns)
			}
			if c.errs > 0 {
				requireProblems(t, "error", errs, []want{{"web", "image", "berth does not build images"}})
			}
		})
	}
}

// loadProblems loads o and returns its errors and warnings, for tests that count them.
func loadProblems(t *testing.T, o spec.LoadOptions) (errs, warns []spec.Problem) {
	t.Helper()
	_, warns, err := tryLoad(t, o)
	var ve *spec.ValidationError
	if errors.As(err, &ve) {
		return ve.Problems, warns
	}
	if err != nil {
		t.Fatal(err)
	}
	return nil, warns
}
