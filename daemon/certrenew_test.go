package daemon

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
)

func TestCertWait(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	// Issued at t0 for three minutes: due at t0+2m.
	leaf := &x509.Certificate{NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(3 * time.Minute)}
	long := &x509.Certificate{NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(90 * 24 * time.Hour)}
	for _, tc := range []struct {
		name     string
		now      time.Time
		leaf     *x509.Certificate
		failures int
		want     time.Duration
	}{
		{"fresh: sleep until two thirds", t0, leaf, 0, 2 * time.Minute},
		{"later: the rest of the way", t0.Add(90 * time.Second), leaf, 0, 30 * time.Second},
		{"due: at once", t0.Add(2 * time.Minute), leaf, 0, 0},
		{"expired: at once", t0.Add(time.Hour), leaf, 0, 0},
		{"months away: look again within the hour", t0, long, 0, maxCertWait},
		{"no certificate yet", t0, nil, 0, maxCertWait},
		{"first failure", t0.Add(2 * time.Minute), leaf, 1, minCertRetry},
		{"third failure", t0.Add(2 * time.Minute), leaf, 3, 4 * minCertRetry},
		{"many failures: capped", t0.Add(2 * time.Minute), leaf, 40, maxCertRetry},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := certWait(tc.now, tc.leaf, tc.failures); got != tc.want {
				t.Fatalf("certWait = %s, want %s", got, tc.want)
			}
		})
	}
}

// twoRoots are the roots of one cluster before and after a rotation.
func twoRoots(t *testing.T) (oldRoot, newRoot *ca.RootCA) {
	t.Helper()
	var err error
	if oldRoot, err = ca.NewRootCA("c1"); err != nil {
		t.Fatal(err)
	}
	if newRoot, err = ca.NewRootCA("c1"); err != nil {
		t.Fatal(err)
	}
	return oldRoot, newRoot
}

func TestCertWanted(t *testing.T) {
	oldRoot, newRoot := twoRoots(t)
	plain := &identity{root: oldRoot.Cert()}
	moved := &identity{root: newRoot.Cert(), trusted: []*x509.Certificate{oldRoot.Cert()}}
	for _, tc := range []struct {
		name string
		id   *identity
		resp api.HeartbeatResponse
		want bool
	}{
		{"same root", plain, api.HeartbeatResponse{RootCA: oldRoot.Digest()}, false},
		{"an older manager says nothing of roots", plain, api.HeartbeatResponse{}, false},
		{"rotation started", plain, api.HeartbeatResponse{RootCA: newRoot.Digest(), RotatingCA: true}, true},
		{"moved, rotation under way", moved, api.HeartbeatResponse{RootCA: newRoot.Digest(), RotatingCA: true}, false},
		{"moved, rotation over: drop the old root", moved, api.HeartbeatResponse{RootCA: newRoot.Digest()}, true},
		{"no identity", nil, api.HeartbeatResponse{RootCA: newRoot.Digest()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := certWanted(tc.id, &tc.resp); (got != "") != tc.want {
				t.Fatalf("certWanted = %q, want a reason: %t", got, tc.want)
			}
		})
	}
}

// The roots trusted during a rotation survive a restart, and go with the certificate
// that comes without them.
func TestSaveIdentityKeepsTrustedRoots(t *testing.T) {
	oldRoot, newRoot := twoRoots(t)
	_, certPEM, keyPEM := issue(t, newRoot, ca.RoleWorker)
	d := dataDir(t.TempDir())
	for _, tc := range []struct {
		name    string
		trusted []byte
		want    int
	}{
		{"during a rotation", oldRoot.CertPEM(), 1},
		{"after it", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := newTrustedIdentity(newRoot.CertPEM(), tc.trusted, certPEM, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.saveIdentity(id, keyPEM); err != nil {
				t.Fatal(err)
			}
			got, err := d.readIdentity()
			if err != nil {
				t.Fatal(err)
			}
			if len(got.trusted) != tc.want || (tc.want == 1 && !got.trusted[0].Equal(oldRoot.Cert())) {
				t.Fatalf("read back %d trusted roots, want %d", len(got.trusted), tc.want)
			}
		})
	}
}
