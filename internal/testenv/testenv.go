// Package testenv gates tests on what the machine has. A test that needs something
// missing skips with a one-line reason on a laptop, and fails instead when
// BERTH_REQUIRE_INTEGRATION=1 (as CI sets it), so a green CI never hides a skipped test.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireIntegrationVar is the environment variable that turns skips into failures.
const RequireIntegrationVar = "BERTH_REQUIRE_INTEGRATION"

// Unavailable skips or fails tb, saying why, according to RequireIntegrationVar.
func Unavailable(tb testing.TB, reason string) {
	tb.Helper()
	if os.Getenv(RequireIntegrationVar) == "1" {
		tb.Fatalf("%s (%s=1: integration prerequisites are required)", reason, RequireIntegrationVar)
	}
	tb.Skip(reason)
}

// RequireCommand stops tb unless the named program is on PATH.
func RequireCommand(tb testing.TB, name, why string) {
	tb.Helper()
	if _, err := exec.LookPath(name); err != nil {
		Unavailable(tb, name+" is not installed: "+why)
	}
}
