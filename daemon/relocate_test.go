package daemon

import "testing"

// A manager forcing a new cluster keeps its address unless it is given one or
// listens on one.
func TestRecoveryAddr(t *testing.T) {
	for _, tc := range []struct {
		flag, listen, want string
	}{
		{"", "0.0.0.0:4270", "10.0.0.1:4270"},
		{"", ":4270", "10.0.0.1:4270"},
		{"", "10.0.0.2:4270", "10.0.0.2:4270"},
		{"10.0.0.3", "0.0.0.0:4270", "10.0.0.3:4270"},
		{"10.0.0.3:5000", "10.0.0.2:4270", "10.0.0.3:5000"},
	} {
		if got, err := recoveryAddr(tc.flag, tc.listen, "10.0.0.1:4270"); err != nil || got != tc.want {
			t.Errorf("recoveryAddr(%q, %q) = %q, %v; want %s", tc.flag, tc.listen, got, err, tc.want)
		}
	}
}
