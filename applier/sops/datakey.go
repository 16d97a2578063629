package sops

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// dataKeySize is the size of the AES-256 key sops encrypts every value with.
const dataKeySize = 32

// dataKey opens the data key from the first age stanza one of ids can open.
func dataKey(meta *metadata, ids []age.Identity) ([]byte, error) {
	if len(meta.Age) == 0 {
		if len(meta.KeyGroups) > 0 {
			return nil, fmt.Errorf("%w: its keys are in key_groups (Shamir secret sharing); encrypt it for age recipients without --shamir-secret-sharing-threshold", ErrUnsupported)
		}
		return nil, fmt.Errorf("%w: it has no age recipient (only PGP or a cloud key service); add one with `sops updatekeys` or `sops -r -i --add-age RECIPIENT`", ErrUnsupported)
	}
	recipients := make([]string, 0, len(meta.Age))
	for _, st := range meta.Age {
		recipients = append(recipients, st.Recipient)
		r, err := age.Decrypt(armor.NewReader(strings.NewReader(st.Enc)), ids...)
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: the data key for age recipient %s does not decrypt: %v", ErrMAC, st.Recipient, err)
		}
		key, err := io.ReadAll(io.LimitReader(r, dataKeySize+1))
		if err != nil || len(key) != dataKeySize {
			return nil, fmt.Errorf("%w: the data key for age recipient %s is not %d bytes", ErrMAC, st.Recipient, dataKeySize)
		}
		return key, nil
	}
	return nil, &NotRecipientError{Recipients: recipients}
}
