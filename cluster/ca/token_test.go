package ca

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestJoinTokenFormatAndParse(t *testing.T) {
	root := mustRoot(t, "c1")
	w, err := NewJoinToken(root, RoleWorker)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewJoinToken(root, RoleManager)
	if err != nil {
		t.Fatal(err)
	}
	if w.Secret == m.Secret {
		t.Fatal("worker and manager tokens share a secret")
	}
	s := w.Encode()
	want := "BERTH-1-" + root.Digest() + "-" + w.Secret
	if s != want || len(w.Secret) != SecretLen {
		t.Fatalf("Encode() = %q, want %q", s, want)
	}
	got, err := ParseJoinToken("  " + s + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if got != w {
		t.Fatalf("parsed %#v, want %#v", got, w)
	}

	rot, err := RotateJoinToken(w)
	if err != nil {
		t.Fatal(err)
	}
	if rot.CADigest != w.CADigest || rot.Secret == w.Secret {
		t.Fatal("rotation must keep the digest and change the secret")
	}
	if _, err := NewJoinToken(root, "admin"); !errors.Is(err, ErrInvalidRole) {
		t.Fatalf("NewJoinToken(admin) err = %v", err)
	}
}

func TestParseJoinTokenRejects(t *testing.T) {
	root := mustRoot(t, "c1")
	tok, err := NewJoinToken(root, RoleWorker)
	if err != nil {
		t.Fatal(err)
	}
	d, sec := tok.CADigest, tok.Secret
	for name, s := range map[string]string{
		"empty":            "",
		"swarm token":      "SWMTKN-1-" + d + "-" + sec,
		"lower-case":       "berth-1-" + d + "-" + sec,
		"version 2":        "BERTH-2-" + d + "-" + sec,
		"no version":       "BERTH--" + d + "-" + sec,
		"short digest":     "BERTH-1-" + d[1:] + "-" + sec,
		"short secret":     "BERTH-1-" + d + "-" + sec[1:],
		"long secret":      "BERTH-1-" + d + "-" + sec + "0",
		"upper digest":     "BERTH-1-" + strings.ToUpper(d) + "-" + sec,
		"extra part":       "BERTH-1-" + d + "-" + sec + "-x",
		"missing secret":   "BERTH-1-" + d,
		"space inside":     "BERTH-1-" + d + "- " + sec,
		"non-base36 char":  "BERTH-1-" + d + "-" + sec[:SecretLen-1] + "_",
		"digest as secret": "BERTH-1-" + sec + "-" + d,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseJoinToken(s)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
			if strings.Contains(err.Error(), sec[:10]) {
				t.Fatalf("error reveals the secret: %v", err)
			}
		})
	}
	_, err = ParseJoinToken("nope")
	if want := "not a berth join token: expected BERTH-1-<digest>-<secret>"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}

func TestTokenPrintingRedactsSecret(t *testing.T) {
	tok, err := NewJoinToken(mustRoot(t, "c1"), RoleManager)
	if err != nil {
		t.Fatal(err)
	}
	holder := struct{ T Token }{tok}
	for _, s := range []string{
		fmt.Sprint(tok), fmt.Sprintf("%v %+v %s %#v", tok, tok, tok, tok),
		fmt.Sprintf("%v %+v", holder, holder), tok.String(),
		fmt.Errorf("oops: %v", tok).Error(),
	} {
		if strings.Contains(s, tok.Secret) {
			t.Fatalf("secret printed: %s", s)
		}
	}
}

func TestMatchRole(t *testing.T) {
	root := mustRoot(t, "c1")
	w, _ := NewJoinToken(root, RoleWorker)
	m, _ := NewJoinToken(root, RoleManager)
	for _, tc := range []struct {
		secret string
		w, m   Token
		role   Role
		ok     bool
	}{
		{w.Secret, w, m, RoleWorker, true},
		{m.Secret, w, m, RoleManager, true},
		{"", w, m, "", false},
		{flipLast(w.Secret), w, m, "", false},
		{w.Secret + "0", w, m, "", false},
		// An unset stored token never matches, not even the empty secret.
		{"", Token{}, Token{}, "", false},
		{"", w, Token{}, "", false},
		// Equal stored secrets (a bug elsewhere) grant the lesser role.
		{w.Secret, w, w, RoleWorker, true},
	} {
		role, ok := MatchRole(tc.secret, tc.w, tc.m)
		if role != tc.role || ok != tc.ok {
			t.Errorf("MatchRole(%q) = %q %v, want %q %v", tc.secret, role, ok, tc.role, tc.ok)
		}
	}
}

// The manager's side of a join: wrong token, token of another cluster.
func TestVerifyJoinToken(t *testing.T) {
	c1, c2 := mustRoot(t, "c1"), mustRoot(t, "c2")
	w, _ := NewJoinToken(c1, RoleWorker)
	m, _ := NewJoinToken(c1, RoleManager)
	other, _ := NewJoinToken(c2, RoleManager)
	rotated, _ := RotateJoinToken(m)

	if r, err := VerifyJoinToken(m.Encode(), w, m); err != nil || r != RoleManager {
		t.Fatalf("manager token: %q %v", r, err)
	}
	if r, err := VerifyJoinToken(w.Encode(), w, m); err != nil || r != RoleWorker {
		t.Fatalf("worker token: %q %v", r, err)
	}
	if _, err := VerifyJoinToken(other.Encode(), w, m); !errors.Is(err, ErrWrongCluster) {
		t.Fatalf("other cluster's token: err = %v, want ErrWrongCluster", err)
	}
	_, err := VerifyJoinToken(m.Encode(), w, rotated)
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("rotated-away token: err = %v, want ErrInvalidToken", err)
	}
	if strings.Contains(err.Error(), m.Secret) || strings.Contains(err.Error(), rotated.Secret) {
		t.Fatalf("error reveals a secret: %v", err)
	}
	if _, err := VerifyJoinToken("garbage", w, m); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("garbage: err = %v", err)
	}
}

// flipLast changes the last character of a secret, whatever it is.
func flipLast(s string) string {
	c := byte('0')
	if s[len(s)-1] == c {
		c = '1'
	}
	return s[:len(s)-1] + string(c)
}
