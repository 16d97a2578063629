package sops

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"filippo.io/age"
	"gopkg.in/yaml.v3"
)

// metadataKey is the top-level key sops keeps its metadata under.
const metadataKey = "sops"

// metadata is what this reader uses of a document's `sops` map.
type metadata struct {
	Age                     []ageStanza `yaml:"age"`
	KeyGroups               []yaml.Node `yaml:"key_groups"`
	LastModified            string      `yaml:"lastmodified"`
	MAC                     string      `yaml:"mac"`
	UnencryptedSuffix       string      `yaml:"unencrypted_suffix"`
	EncryptedSuffix         string      `yaml:"encrypted_suffix"`
	UnencryptedRegex        string      `yaml:"unencrypted_regex"`
	EncryptedRegex          string      `yaml:"encrypted_regex"`
	UnencryptedCommentRegex string      `yaml:"unencrypted_comment_regex"`
	EncryptedCommentRegex   string      `yaml:"encrypted_comment_regex"`
	MACOnlyEncrypted        bool        `yaml:"mac_only_encrypted"`
}

// ageStanza is the data key encrypted for one age recipient, armored.
type ageStanza struct {
	Recipient string `yaml:"recipient"`
	Enc       string `yaml:"enc"`
}

// IsEncrypted reports whether data is a SOPS document: YAML or JSON whose top level
// holds a `sops` map with a MAC, or a dotenv file with sops_mac and sops_lastmodified.
func IsEncrypted(data []byte) bool {
	if !bytes.Contains(data, []byte(metadataKey)) {
		return false
	}
	if isDotenv(data) {
		return true
	}
	var top struct {
		Sops *metadata `yaml:"sops"`
	}
	if yaml.Unmarshal(data, &top) != nil || top.Sops == nil {
		return false
	}
	return top.Sops.MAC != "" && top.Sops.LastModified != ""
}

// Decrypt returns the plaintext of the SOPS document data, decrypted with whichever of
// ids is one of its recipients. name chooses the output as sops -d does: a .json file
// is written back as JSON, a .yaml or .yml file as YAML (both without comments), a
// .env file as dotenv, and any other file is sops's binary form, whose one value is
// the plaintext.
func Decrypt(name string, data []byte, ids []age.Identity) ([]byte, error) {
	if strings.EqualFold(path.Ext(name), ".env") {
		return decryptDotenv(data, ids)
	}
	root, meta, err := parse(data)
	if err != nil {
		return nil, err
	}
	w, err := newDecrypter(meta, ids)
	if err != nil {
		return nil, err
	}
	if err := w.walk(root, nil); err != nil {
		return nil, err
	}
	if err := w.checkMAC(meta); err != nil {
		return nil, err
	}
	return emit(name, root)
}

// parse reads the document's one YAML (or JSON) mapping, without its metadata.
func parse(data []byte) (*yaml.Node, *metadata, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, nil, fmt.Errorf("not a SOPS document: %w", err)
	}
	if err := dec.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%w: it holds several YAML documents; keep one per file", ErrUnsupported)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, nil, errors.New("not a SOPS document: its top level is not a map")
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != metadataKey {
			continue
		}
		meta := new(metadata)
		if err := root.Content[i+1].Decode(meta); err != nil {
			return nil, nil, fmt.Errorf("not a SOPS document: its sops metadata: %w", err)
		}
		root.Content = append(root.Content[:i:i], root.Content[i+2:]...)
		return root, meta, nil
	}
	return nil, nil, errors.New("not a SOPS document: it has no sops metadata")
}

// checkMAC compares the MAC of the values walked with the document's.
func (w *walker) checkMAC(meta *metadata) error {
	modified, err := time.Parse(time.RFC3339, meta.LastModified)
	if err != nil {
		return fmt.Errorf("%w: its lastmodified %q is not a time", ErrMAC, meta.LastModified)
	}
	want, _, err := decryptValue(w.key, meta.MAC, modified.Format(time.RFC3339))
	if err != nil {
		return err
	}
	got := fmt.Sprintf("%X", w.mac.Sum(nil))
	if subtle.ConstantTimeCompare(want, []byte(got)) != 1 {
		return fmt.Errorf("%w: the file was changed after sops encrypted it", ErrMAC)
	}
	return nil
}

// emit writes the decrypted document in the form its name calls for.
func emit(name string, root *yaml.Node) ([]byte, error) {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml":
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(4)
		if err := enc.Encode(root); err != nil {
			return nil, err
		}
		return buf.Bytes(), enc.Close()
	case ".json":
		var buf bytes.Buffer
		writeJSON(&buf, root, "")
		buf.WriteByte('\n')
		return buf.Bytes(), nil
	}
	if len(root.Content) != 2 || root.Content[0].Value != "data" {
		return nil, fmt.Errorf("%w: sops keeps a %q file in its binary form, a \"data\" value; name a YAML document .yaml and a JSON one .json",
			ErrUnsupported, path.Ext(name))
	}
	return []byte(root.Content[1].Value), nil
}
