package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/berthd/berth/cluster/api"
)

// withCASummary is src with its CA certificates as their subjects and SHA-256
// fingerprints: what an operator compares, where the PEM would fill the screen.
func withCASummary(src *api.SourceInfo) *api.SourceInfo {
	if src.Source == nil || src.CA == "" {
		return src
	}
	out := *src
	out.Source = src.Source.Copy()
	out.CA = caSummary([]byte(src.CA))
	return &out
}

// caSummary describes each certificate of a PEM bundle as "SUBJECT (SHA256 FINGERPRINT)".
func caSummary(bundle []byte) string {
	var parts []string
	for {
		var block *pem.Block
		block, bundle = pem.Decode(bundle)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		sum := sha256.Sum256(block.Bytes)
		subject := "unreadable certificate"
		if cert, err := x509.ParseCertificate(block.Bytes); err == nil {
			subject = cert.Subject.String()
		}
		parts = append(parts, fmt.Sprintf("%s (SHA256 %X)", subject, sum[:]))
	}
	return strings.Join(parts, "; ")
}
