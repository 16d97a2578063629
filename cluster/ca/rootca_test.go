package ca

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRootCAPEMRoundTrip(t *testing.T) {
	root := mustRoot(t, "c1")
	if _, ok := root.Cert().PublicKey.(*ecdsa.PublicKey); !ok {
		t.Fatalf("root key is %T, want ECDSA", root.Cert().PublicKey)
	}
	if got := root.Cert().NotAfter.Sub(root.Cert().NotBefore); got < 19*365*24*time.Hour {
		t.Fatalf("root validity %s, want about 20 years", got)
	}
	loaded, err := ParseRootCA(root.CertPEM(), root.KeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Digest() != root.Digest() || loaded.ClusterID() != "c1" {
		t.Fatalf("loaded CA: digest %s cluster %s, want %s c1", loaded.Digest(), loaded.ClusterID(), root.Digest())
	}
	if !bytes.Equal(loaded.KeyPEM(), root.KeyPEM()) || !bytes.Equal(loaded.CertPEM(), root.CertPEM()) {
		t.Fatal("PEM differs after a round trip")
	}
	// The loaded CA signs certificates that verify against the original.
	n := mustNode(t, loaded, "n1", RoleWorker, 0)
	if err := n.cert.CheckSignatureFrom(root.Cert()); err != nil {
		t.Fatalf("cert from the loaded CA: %v", err)
	}

	verifyOnly, err := ParseCACert(root.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	if !verifyOnly.Equal(root.Cert()) {
		t.Fatal("ParseCACert returned another certificate")
	}
}

func TestParseRootCARejects(t *testing.T) {
	a, b := mustRoot(t, "c1"), mustRoot(t, "c1")
	n := mustNode(t, a, "n1", RoleManager, 0)
	for name, tc := range map[string]struct{ cert, key []byte }{
		"key of another CA":      {a.CertPEM(), b.KeyPEM()},
		"node cert as CA":        {n.certPEM, n.keyPEM},
		"garbage cert":           {[]byte("nope"), a.KeyPEM()},
		"garbage key":            {a.CertPEM(), []byte("nope")},
		"two certs":              {append(a.CertPEM(), b.CertPEM()...), a.KeyPEM()},
		"key where cert belongs": {a.KeyPEM(), a.KeyPEM()},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseRootCA(tc.cert, tc.key)
			if !errors.Is(err, ErrInvalidCert) {
				t.Fatalf("err = %v, want ErrInvalidCert", err)
			}
			if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatalf("error mentions key material: %v", err)
			}
		})
	}
	if _, err := ParseCACert(n.certPEM); !errors.Is(err, ErrInvalidCert) {
		t.Fatalf("ParseCACert(node cert) = %v, want ErrInvalidCert", err)
	}
}

func TestNewRootCAValidatesClusterID(t *testing.T) {
	for _, id := range []string{"", "-x", "a b", "a/b", strings.Repeat("x", 129)} {
		if _, err := NewRootCA(id); err == nil {
			t.Errorf("NewRootCA(%q) succeeded", id)
		}
	}
}

func TestDigest(t *testing.T) {
	a, b := mustRoot(t, "c1"), mustRoot(t, "c1")
	if len(a.Digest()) != DigestLen || !isBase36(a.Digest()) {
		t.Fatalf("digest %q: want %d chars of [0-9a-z]", a.Digest(), DigestLen)
	}
	parsed, err := ParseCACert(a.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	if Digest(parsed) != a.Digest() || Digest(a.Cert()) != a.Digest() {
		t.Fatal("digest is not stable")
	}
	if a.Digest() == b.Digest() {
		t.Fatal("two CAs share a digest")
	}
	// Padding: a small number still encodes to the full width.
	if got := base36([]byte{1}, DigestLen); got != strings.Repeat("0", DigestLen-1)+"1" {
		t.Fatalf("base36 padding: %q", got)
	}
}

func TestRootCAStringHidesKey(t *testing.T) {
	root := mustRoot(t, "c1")
	for _, s := range []string{root.String(), root.GoString()} {
		if strings.Contains(s, "PRIVATE") || !strings.Contains(s, root.Digest()) {
			t.Fatalf("String() = %q", s)
		}
	}
}
