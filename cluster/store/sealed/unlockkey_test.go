package sealed

import (
	"errors"
	"strings"
	"testing"
)

func TestUnlockKeyFormat(t *testing.T) {
	key, err := NewUnlockKey()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, "BERTHKEY-1-") {
		t.Fatalf("key %q lacks the BERTHKEY-1- prefix", key)
	}
	raw, err := parseUnlockKey(key)
	if err != nil {
		t.Fatalf("parse fresh key: %v", err)
	}
	if got := formatUnlockKey(raw); got != key {
		t.Fatalf("format(parse(key)) = %q, want %q", got, key)
	}
	other, _ := NewUnlockKey()
	if other == key {
		t.Fatal("two fresh keys are equal")
	}
}

func TestParseUnlockKey(t *testing.T) {
	good, _ := NewUnlockKey()
	body := strings.TrimPrefix(good, "BERTHKEY-1-")
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"valid", good, true},
		{"trailing newline from stdin", good + "\n", true},
		{"surrounding spaces", "  " + good + " \t", true},
		{"empty", "", false},
		{"blank", " \n", false},
		{"garbage", "hello", false},
		{"swarm key", "SWMKEY-1-" + body, false},
		{"lower case prefix", "berthkey-1-" + body, false},
		{"no version", "BERTHKEY-" + body, false},
		{"future version", "BERTHKEY-2-" + body, false},
		{"truncated", good[:len(good)-4], false},
		{"too long", good + "AAAA", false},
		{"bad characters", "BERTHKEY-1-" + strings.Repeat("*", len(body)), false},
		{"std base64 with padding", "BERTHKEY-1-" + body + "=", false},
		{"inner space", good[:20] + " " + good[20:], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseUnlockKey(tt.in)
			if tt.ok {
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrMalformedKey) {
				t.Fatalf("err = %v, want ErrMalformedKey", err)
			}
			if ValidateUnlockKey(tt.in) == nil {
				t.Fatal("ValidateUnlockKey accepted it")
			}
			// Never echo what the operator typed: it may be a real key
			// with one wrong character.
			if len(strings.TrimSpace(tt.in)) > 8 && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
				t.Fatalf("error %q echoes the input", err)
			}
			if len(body) > 8 && strings.Contains(err.Error(), body[:16]) {
				t.Fatalf("error %q contains key material", err)
			}
		})
	}
}
