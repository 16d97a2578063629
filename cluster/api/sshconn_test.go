package api

import (
	"slices"
	"testing"
)

func TestSSHHostArgs(t *testing.T) {
	for _, tt := range []struct {
		host string
		want []string
	}{
		{"ssh://m1", []string{"-T", "-o", "ConnectTimeout=30", "--", "m1", "berth", "system", "dial-stdio"}},
		{"ssh://admin@m1:2222", []string{"-T", "-o", "ConnectTimeout=30", "-l", "admin", "-p", "2222", "--", "m1", "berth", "system", "dial-stdio"}},
		{"ssh://[fd00::1]:22", []string{"-T", "-o", "ConnectTimeout=30", "-p", "22", "--", "fd00::1", "berth", "system", "dial-stdio"}},
	} {
		target, err := parseSSHHost(tt.host)
		if err != nil {
			t.Fatalf("%s: %v", tt.host, err)
		}
		if got := target.args("berth"); !slices.Equal(got, tt.want) {
			t.Errorf("%s: ssh %v\nwant %v", tt.host, got, tt.want)
		}
	}
}

func TestSSHHostRefusals(t *testing.T) {
	for _, host := range []string{"ssh://", "ssh://m1/path", "ssh://u:pw@m1", "ssh://m1?x=1"} {
		if _, err := New(host); err == nil {
			t.Errorf("New(%q) accepted", host)
		}
	}
}
