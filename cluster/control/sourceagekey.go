package control

import (
	"bytes"

	"filippo.io/age"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
)

// ageKeySuffix ends the name of the secret a source keeps its age key in.
const ageKeySuffix = "age-key"

// maxAgeKey bounds an age key file: a few identities and age-keygen's comments.
const maxAgeKey = 16 << 10

// addAgeKey gives a new source the age key `source add --age-key-file` sent; store
// writes it as one of the source's secrets and returns its name. The reference and
// recipients are the server's to set, whatever the client sent.
func addAgeKey(src *model.Source, key []byte, store func(suffix string, data []byte) string) error {
	src.AgeKeyRef, src.AgeRecipients = "", nil
	if len(key) == 0 {
		return nil
	}
	recipients, err := checkAgeKey(src.Name, key)
	if err != nil {
		return err
	}
	src.AgeKeyRef, src.AgeRecipients = store(ageKeySuffix, key), recipients
	return nil
}

// updateAgeKey adds to s the age key change `source update` asked for.
func (c *Control) updateAgeKey(cur *model.Source, req *api.SourceUpdateRequest, s *command.SourceSettings) error {
	switch {
	case req.RemoveAgeKey && req.AgeKey != nil:
		return badRequest("source %s: give --age-key-file FILE or --no-age-key, not both", cur.Name)
	case req.RemoveAgeKey:
		s.RemoveAgeKey = true
		return nil
	case req.AgeKey == nil:
		return nil
	}
	recipients, err := checkAgeKey(cur.Name, req.AgeKey)
	if err != nil {
		return err
	}
	name := cur.AgeKeyRef
	if name == "" {
		name = "source-" + cur.Name + "-" + ageKeySuffix
	}
	s.AgeKey = &model.Secret{ID: c.newID(), Name: name, Data: req.AgeKey, Labels: map[string]string{SourceSecretLabel: cur.Name}}
	s.AgeRecipients = recipients
	return nil
}

// checkAgeKey reads an age identity file and returns the public key of each identity.
// The errors never quote the file: it is a private key.
func checkAgeKey(source string, key []byte) ([]string, error) {
	if len(key) > maxAgeKey {
		return nil, badRequest("source %s: --age-key-file is %d bytes, over %d: give the file age-keygen wrote", source, len(key), maxAgeKey)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(key))
	if err != nil {
		return nil, badRequest("source %s: --age-key-file holds no age identity (%v): give the file age-keygen wrote, whose key line starts with AGE-SECRET-KEY-1", source, err)
	}
	recipients := make([]string, 0, len(ids))
	for _, id := range ids {
		switch id := id.(type) {
		case *age.X25519Identity:
			recipients = append(recipients, id.Recipient().String())
		case *age.HybridIdentity:
			recipients = append(recipients, id.Recipient().String())
		default:
			return nil, badRequest("source %s: --age-key-file holds an identity of a kind berth cannot use (%T): give an age-keygen key", source, id)
		}
	}
	return recipients, nil
}
