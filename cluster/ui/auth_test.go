package ui_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/ca"
)

func TestWithoutCredentialsEveryPageIsTheLoginPage(t *testing.T) {
	f := newFixture(t, sampleCluster())
	for _, path := range []string{"/ui/", "/ui/sources/infra", "/ui/nodes", "/ui/events", "/ui/nope"} {
		rec := f.get(nil, path)
		if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "berth ui token") {
			t.Errorf("%s: %d, want 401 saying how to log in:\n%s", path, rec.Code, rec.Body)
		}
	}
}

func TestLoginTokenOpensASession(t *testing.T) {
	f := newFixture(t, sampleCluster())
	token, _, err := f.sessions.IssueToken()
	if err != nil {
		t.Fatal(err)
	}
	rec := f.get(nil, "/ui/login?token="+token)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `http-equiv="refresh" content="0; url=/ui/"`) {
		t.Fatalf("login: %d, want 200 moving on to /ui/:\n%s", rec.Code, rec.Body)
	}
	c := rec.Result().Cookies()[0]
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.MaxAge != int((12*time.Hour).Seconds()) {
		t.Errorf("cookie %+v: want HttpOnly, Secure, SameSite=Strict, 12h", c)
	}
	if rec := f.get(c, "/ui/"); rec.Code != http.StatusOK {
		t.Errorf("with the cookie: %d, want 200", rec.Code)
	}
}

func TestLoginTokenWorksOnce(t *testing.T) {
	f := newFixture(t, sampleCluster())
	token, _, err := f.sessions.IssueToken()
	if err != nil {
		t.Fatal(err)
	}
	f.get(nil, "/ui/login?token="+token)
	rec := f.get(nil, "/ui/login?token="+token)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "used already") || len(rec.Result().Cookies()) != 0 {
		t.Errorf("second use: %d, cookies %v, want 401 and none:\n%s", rec.Code, rec.Result().Cookies(), rec.Body)
	}
}

func TestLoginTokenExpires(t *testing.T) {
	f := newFixture(t, sampleCluster())
	token, _, err := f.sessions.IssueToken()
	if err != nil {
		t.Fatal(err)
	}
	*f.now = f.now.Add(5 * time.Minute)
	if rec := f.get(nil, "/ui/login?token="+token); rec.Code != http.StatusUnauthorized {
		t.Errorf("after 5 minutes: %d, want 401", rec.Code)
	}
}

func TestUnknownTokenIsRefused(t *testing.T) {
	f := newFixture(t, sampleCluster())
	for _, q := range []string{"", "?token=", "?token=made-up"} {
		if rec := f.get(nil, "/ui/login"+q); rec.Code != http.StatusUnauthorized {
			t.Errorf("/ui/login%s: %d, want 401", q, rec.Code)
		}
	}
}

func TestSessionExpires(t *testing.T) {
	f := newFixture(t, sampleCluster())
	c := f.login(t)
	*f.now = f.now.Add(12*time.Hour - time.Second)
	if rec := f.get(c, "/ui/"); rec.Code != http.StatusOK {
		t.Fatalf("before 12h: %d, want 200", rec.Code)
	}
	*f.now = f.now.Add(time.Second)
	if rec := f.get(c, "/ui/"); rec.Code != http.StatusUnauthorized {
		t.Errorf("after 12h: %d, want 401", rec.Code)
	}
}

func TestMadeUpCookieIsRefused(t *testing.T) {
	f := newFixture(t, sampleCluster())
	c := f.login(t)
	c.Value += "x"
	if rec := f.get(c, "/ui/"); rec.Code != http.StatusUnauthorized {
		t.Errorf("changed cookie: %d, want 401", rec.Code)
	}
}

func TestClientCertificates(t *testing.T) {
	root, err := ca.NewRootCA("c1")
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.NewRootCA("c2")
	if err != nil {
		t.Fatal(err)
	}
	admin := func(r *ca.RootCA) *x509.Certificate {
		_, csr, err := ca.NewNodeKeyAndCSR("alice")
		if err != nil {
			t.Fatal(err)
		}
		return parseCert(t, must(r.IssueClientCert(csr, "alice", time.Hour)))
	}
	node := func(role ca.Role) *x509.Certificate {
		_, csr, err := ca.NewNodeKeyAndCSR("n1")
		if err != nil {
			t.Fatal(err)
		}
		return parseCert(t, must(root.IssueNodeCert(csr, "n1", role, 0, "127.0.0.1")))
	}
	tests := []struct {
		name string
		cert *x509.Certificate
		root *ca.RootCA
		want int
	}{
		{"an admin certificate of the cluster may", admin(root), root, http.StatusOK},
		{"an admin certificate of another cluster may not", admin(other), other, http.StatusUnauthorized},
		{"a manager's node certificate may not", node(ca.RoleManager), root, http.StatusUnauthorized},
		{"a worker's node certificate may not", node(ca.RoleWorker), root, http.StatusUnauthorized},
	}
	f := newFixture(t, sampleCluster())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/ui/", nil)
			req.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{tt.cert, tt.root.Cert()}}}
			rec := httptest.NewRecorder()
			f.h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("%d, want %d", rec.Code, tt.want)
			}
		})
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(fmt.Sprintf("issue a certificate: %v", err))
	}
	return b
}

func parseCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("no PEM certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return c
}
