package spec_test

import (
	"testing"

	"github.com/berthd/berth/spec"
)

func TestStackNames(t *testing.T) {
	for in, want := range map[string]string{
		"web": "web", "My_App": "my_app", "-x": "x", "_-9lives": "9lives", "Cache Layer!": "cachelayer", "élan": "lan", "---": "",
	} {
		if got := spec.StackNameFromFolder(in); got != want {
			t.Errorf("StackNameFromFolder(%q) = %q, want %q", in, got, want)
		}
		if want != "" && !spec.ValidStackName(want) {
			t.Errorf("ValidStackName(%q) = false for a normalized name", want)
		}
	}
	for _, bad := range []string{"", "-web", "Web", "web app", "web.app"} {
		if spec.ValidStackName(bad) {
			t.Errorf("ValidStackName(%q) = true", bad)
		}
	}
}
