// Package sops reads files encrypted with SOPS (https://getsops.io) for age recipients:
// the YAML, JSON and dotenv forms, and the binary form (any other file, stored by sops
// as JSON with one "data" value). It decrypts in memory only.
//
// It is a reader of SOPS's documented format rather than the SOPS Go module, which
// links the AWS, Google Cloud, Azure and Vault SDKs for key services berth does not
// offer. The data key is the payload of one of the document's age stanzas; every value
// is AES-256-GCM with a 32-byte nonce and the value's path ("a:b:") as additional data;
// the MAC is SHA-512 over the plaintext values in document order, encrypted the same
// way with the document's lastmodified time as additional data.
package sops
