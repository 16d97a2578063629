package ca

import (
	"crypto/x509"
	"time"
)

// Defaults. Node certificates are short-lived (like Swarm's 90 days) so a
// stolen one stops working on its own; the root lives long because
// replacing it means re-issuing every node certificate.
const (
	DefaultRootValidity     = 20 * 365 * 24 * time.Hour
	DefaultNodeCertValidity = 90 * 24 * time.Hour

	// backdate is subtracted from NotBefore so that a node whose clock is a
	// little behind the CA's does not reject a certificate issued "in the
	// future". Swarm uses the same hour.
	backdate = time.Hour
)

// Option configures a RootCA (NewRootCA, ParseRootCA).
type Option func(*caOptions)

type caOptions struct {
	validity time.Duration
	now      func() time.Time
}

func newCAOptions(opts []Option) caOptions {
	o := caOptions{validity: DefaultRootValidity, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithValidity sets how long a new root CA is valid. It only affects
// NewRootCA; non-positive values keep the default.
func WithValidity(d time.Duration) Option {
	return func(o *caOptions) {
		if d > 0 {
			o.validity = d
		}
	}
}

// WithClock sets the CA's clock, used for certificate validity periods and
// for refusing to issue with an expired root. Tests inject a fixed clock.
func WithClock(now func() time.Time) Option {
	return func(o *caOptions) {
		if now != nil {
			o.now = now
		}
	}
}

// TLSOption configures the TLS configurations and FetchAndVerifyCA.
type TLSOption func(*tlsOptions)

type tlsOptions struct {
	now            func() time.Time
	extraRoots     []*x509.Certificate
	optionalClient bool
}

func newTLSOptions(opts []TLSOption) tlsOptions {
	var o tlsOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithTLSClock sets the clock used to check certificate validity during
// handshakes (tls.Config.Time). Tests inject it to exercise expiry.
func WithTLSClock(now func() time.Time) TLSOption {
	return func(o *tlsOptions) { o.now = now }
}

// WithAdditionalRoots trusts more CA certificates besides the cluster root,
// and (for servers) presents them too. It exists for root rotation: while
// nodes move from the old root to the new one, both are trusted.
func WithAdditionalRoots(certs ...*x509.Certificate) TLSOption {
	return func(o *tlsOptions) { o.extraRoots = append(o.extraRoots, certs...) }
}

// WithOptionalClientCert makes ServerTLSConfig accept clients without a
// certificate (tls.VerifyClientCertIfGiven) so that a joiner can reach the
// join endpoint. A certificate that is presented must still verify against
// the cluster CA. Handlers must then call RequireIdentity.
func WithOptionalClientCert() TLSOption {
	return func(o *tlsOptions) { o.optionalClient = true }
}
