package spec_test

import (
	"testing"

	"github.com/berthd/berth/spec"
)

// logging: of the json-file and local drivers becomes berth's log rotation (issue 18).
func TestLoadLogging(t *testing.T) {
	cases := []struct {
		name    string
		logging string
		want    *spec.Logging
		errs    []want
		warns   []want
	}{
		{name: "json-file", logging: "{driver: json-file, options: {max-size: 10m, max-file: '3'}}", want: &spec.Logging{MaxSize: 10_000_000, MaxFiles: 3}},
		{name: "local", logging: "{driver: local, options: {max-size: 1g}}", want: &spec.Logging{MaxSize: 1_000_000_000}},
		{name: "the default driver", logging: "{options: {max-file: '5'}}", want: &spec.Logging{MaxFiles: 5}},
		{name: "no options", logging: "{driver: json-file}"},
		{name: "other driver", logging: "{driver: syslog, options: {syslog-address: 'udp://x:514'}}",
			warns: []want{{"web", "logging.driver", `berth has no logging driver "syslog"`}, {"web", "logging.driver", "berth service logs"}}},
		{name: "other option", logging: "{driver: json-file, options: {compress: 'true', max-size: 5m}}", want: &spec.Logging{MaxSize: 5_000_000},
			warns: []want{{"web", "logging.options.compress", "does not act on the logging option compress"}}},
		{name: "bad size", logging: "{options: {max-size: huge}}",
			errs: []want{{"web", "logging.options.max-size", `"huge" is not a size`}}},
		{name: "no files", logging: "{options: {max-file: '0'}}",
			errs: []want{{"web", "logging.options.max-file", `"0" is not a number of files`}}},
	}
	for _, c := range cases {
		runProblemCases(t, []problemCase{{
			name:  c.name,
			files: withService("    logging: " + c.logging + "\n"),
			errs:  c.errs,
			warns: c.warns,
			check: func(t *testing.T, st *spec.Stack) {
				requireEqual(t, "logging", service(t, st, "web").Logging, c.want)
			},
		}})
	}
}

// A manager refuses a negative rotation that a client sends.
func TestValidateLogging(t *testing.T) {
	for _, l := range []*spec.Logging{{MaxSize: 1}, {MaxSize: -1}, {MaxFiles: -2}} {
		st, _ := mustLoad(t, composeOpts(withService("")...))
		st.Services["web"].Logging = l
		err := spec.Validate(st)
		if bad := l.MaxSize < 0 || l.MaxFiles < 0; bad != (err != nil) {
			t.Errorf("Validate(%+v) = %v, want an error: %v", *l, err, bad)
		}
	}
}
