package applier

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"

	"filippo.io/age"

	"github.com/berthd/berth/applier/sops"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// WithSOPS makes the secret and config files of a source's stacks that are SOPS
// documents load as their plaintext, decrypted in memory with the source's age key;
// other files load as they are. The key is read from the cluster only for the first
// encrypted file.
func WithSOPS(st stateReader, src *model.Source) LoadOption {
	o := &sopsOpener{st: st, src: src}
	return func(lc *loadConfig) { lc.openFile = o.open }
}

// stateReader is where the source's age key is read from: the cluster.
type stateReader interface {
	State() (*state.Store, error)
}

// sopsOpener decrypts the SOPS files of one load of a source; its stacks load
// concurrently.
type sopsOpener struct {
	st   stateReader
	src  *model.Source
	once sync.Once
	ids  []age.Identity
	err  error
}

func (o *sopsOpener) open(name string, data []byte) ([]byte, error) {
	if !sops.IsEncrypted(data) {
		return data, nil
	}
	o.once.Do(func() { o.ids, o.err = o.identities() })
	if o.err != nil {
		return nil, o.err
	}
	if len(o.ids) == 0 {
		return nil, &sopsError{msg: fmt.Sprintf("%s is encrypted with SOPS, and source %s has no age key", name, o.src.Name),
			fix: fmt.Sprintf("give the source the age identity the file is encrypted for: berth source update %s --age-key-file FILE", o.src.Name)}
	}
	plain, err := sops.Decrypt(name, data, o.ids)
	if err != nil {
		return nil, o.explain(name, err)
	}
	return plain, nil
}

// identities reads the source's age key from its cluster secret: none when it has none.
func (o *sopsOpener) identities() ([]age.Identity, error) {
	if o.src.AgeKeyRef == "" {
		return nil, nil
	}
	st, err := o.st.State()
	if err != nil {
		return nil, err
	}
	sec, err := st.ReadTxn().Secret(nil, o.src.AgeKeyRef)
	if err != nil {
		return nil, fmt.Errorf("source %s: its age key (secret %s): %w", o.src.Name, o.src.AgeKeyRef, err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(sec.Data))
	if err != nil {
		return nil, fmt.Errorf("source %s: its age key (secret %s) is not what `source add --age-key-file` stores: %w", o.src.Name, o.src.AgeKeyRef, err)
	}
	return ids, nil
}

// explain turns a decryption failure into a sentence about the file and its fix.
func (o *sopsOpener) explain(name string, err error) error {
	again := fmt.Sprintf("berth source update %s --age-key-file FILE", o.src.Name)
	var nr *sops.NotRecipientError
	switch {
	case errors.As(err, &nr):
		return &sopsError{msg: fmt.Sprintf("%s is encrypted with SOPS for %s, and the age key of source %s (%s) is not one of them",
			name, strings.Join(nr.Recipients, ", "), o.src.Name, strings.Join(o.src.AgeRecipients, ", ")),
			fix: fmt.Sprintf("encrypt it for %s too (sops updatekeys), or give the source a key it is encrypted for: %s", strings.Join(o.src.AgeRecipients, ", "), again)}
	case errors.Is(err, sops.ErrMAC):
		return &sopsError{msg: fmt.Sprintf("%s is a SOPS file that does not decrypt: %v", name, err),
			fix: "encrypt it again with sops, and change it only with `sops edit`"}
	case errors.Is(err, sops.ErrUnsupported):
		return &sopsError{msg: fmt.Sprintf("%s: %v", name, err), fix: "encrypt it with sops for an age recipient"}
	}
	return fmt.Errorf("%s: SOPS: %w", name, err)
}

// sopsError is a SOPS file that cannot be used, with what to do about it (spec puts
// the fix in the problem it reports).
type sopsError struct{ msg, fix string }

func (e *sopsError) Error() string { return e.msg }
func (e *sopsError) Fix() string   { return e.fix }
