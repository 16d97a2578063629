package spec_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/berthd/berth/spec"
)

// Anchors that include themselves, and alias bombs, are refused before the Compose
// loader sees them: it would spin for a long time before giving up (found by FuzzLoad).
func TestPrescanRefusesRunawayAliases(t *testing.T) {
	bomb := "a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n" +
		"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
	for name, tt := range map[string]struct{ content, want string }{
		"merge of itself":     {"x-common: &c\n  <<: *c\nservices:\n  web: {image: x}\n", `anchor "c" includes itself`},
		"alias inside itself": {"x-a: &c\n  b: *c\nservices:\n  web: {image: x}\n", `anchor "c" includes itself`},
		"alias bomb":          {bomb, "its aliases expand to more than 200000 YAML nodes"},
		"110,000 plain labels": {"services:\n  web:\n    image: x\n    labels:\n" + strings.Repeat("      k: v\n", 1) + plainLabels(110_000),
			"compose.yml: stack app, services.web.labels: 110001 labels; the limit is 128"},
		"a huge list": {"services:\n  web:\n    image: x\n    command:\n" + strings.Repeat("      - a\n", 250_000),
			"the file has more than 200000 YAML nodes (keys, values and list items); services.web.command alone has 250000 entries"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := spec.Load(context.Background(), spec.LoadOptions{Stack: "app", Files: []spec.File{{Name: "compose.yml", Content: []byte(tt.content)}}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
		})
	}
	// Ordinary anchors and merges still load.
	ok := "x-common: &c\n  image: busybox\nservices:\n  a:\n    <<: *c\n  b:\n    <<: *c\n"
	if _, _, err := spec.Load(context.Background(), spec.LoadOptions{Stack: "app", Files: []spec.File{{Name: "compose.yml", Content: []byte(ok)}}}); err != nil {
		t.Fatalf("plain anchors: %v", err)
	}
}

func plainLabels(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "      l%d: v\n", i)
	}
	return b.String()
}
