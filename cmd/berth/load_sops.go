package main

import "github.com/berthd/berth/applier/sops"

// refuseSOPS is how Compose files on the local disk read secret and config files: a
// SOPS file would otherwise be deployed as its ciphertext, and only a source holds
// an age key to decrypt it.
func refuseSOPS(_ string, data []byte) ([]byte, error) {
	if sops.IsEncrypted(data) {
		return nil, errLocalSOPS{}
	}
	return data, nil
}

// errLocalSOPS: a SOPS file in a stack deployed from the local disk.
type errLocalSOPS struct{}

func (errLocalSOPS) Error() string {
	return "it is encrypted with SOPS; berth decrypts SOPS files only in a source's stacks"
}

func (errLocalSOPS) Fix() string {
	return "deploy the stack from a source with an age key (berth source add|update NAME --age-key-file FILE), or give the plaintext"
}
