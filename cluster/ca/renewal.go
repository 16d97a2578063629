package ca

import (
	"crypto/x509"
	"fmt"
	"time"
)

// MinNodeCertValidity is the shortest node certificate lifetime a cluster may
// set. Docker's minimum is an hour; berth allows a minute so that renewal can
// be watched (and tested) without waiting for hours.
const MinNodeCertValidity = time.Minute

// CheckNodeCertValidity refuses a node certificate lifetime shorter than
// MinNodeCertValidity (zero means the default, and is fine).
func CheckNodeCertValidity(d time.Duration) error {
	if d != 0 && d < MinNodeCertValidity {
		return fmt.Errorf("node certificates must be valid for at least %s, not %s: give a longer --cert-expiry", MinNodeCertValidity, d)
	}
	return nil
}

// RenewAt is when a node should renew cert: once two thirds of its lifetime
// have passed, so that a node that is offline for a while still has time left.
// The lifetime counts from the issue time (NotBefore plus the hour every berth
// certificate is backdated by), not from NotBefore, or a certificate of a few
// minutes would be "two thirds through" only after it expired.
func RenewAt(cert *x509.Certificate) time.Time {
	issued := cert.NotBefore.Add(backdate)
	if !issued.Before(cert.NotAfter) {
		issued = cert.NotBefore
	}
	return issued.Add(cert.NotAfter.Sub(issued) * 2 / 3)
}

// NeedsRenewal reports whether a node certificate should be renewed at now:
// from RenewAt on, or when it is not valid at all.
func NeedsRenewal(cert *x509.Certificate, now time.Time) bool {
	if cert == nil || now.Before(cert.NotBefore) || !now.Before(cert.NotAfter) {
		return true
	}
	return !now.Before(RenewAt(cert))
}
