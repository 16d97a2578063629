package main

import (
	"github.com/spf13/pflag"

	"github.com/berthd/berth/cluster/api"
)

// ageKeyFlags are how `source add` and `source update` give a source the age key its
// SOPS-encrypted secret and config files are decrypted with.
type ageKeyFlags struct {
	file   string
	remove bool
}

// register adds --age-key-file, and for `source update` --no-age-key.
func (a *ageKeyFlags) register(f *pflag.FlagSet, update bool) {
	f.StringVar(&a.file, "age-key-file", "", "age identity file (age-keygen) that decrypts the source's SOPS-encrypted secret and config files; stored as a cluster secret")
	if update {
		f.BoolVar(&a.remove, "no-age-key", false, "Remove the source's age key")
	}
}

// read returns the age key file's content, nil when the flag is not given.
func (a *ageKeyFlags) read() ([]byte, error) {
	if a.file == "" {
		return nil, nil
	}
	return readSecretFile("--age-key-file", a.file)
}

// setUpdate puts the age key change into a `source update` request.
func (a *ageKeyFlags) setUpdate(req *api.SourceUpdateRequest) error {
	key, err := a.read()
	req.AgeKey, req.RemoveAgeKey = key, a.remove
	return err
}
