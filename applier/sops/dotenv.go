package sops

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"filippo.io/age"
	"gopkg.in/yaml.v3"
)

// dotenvPrefix starts the flattened metadata lines of a SOPS dotenv file.
const dotenvPrefix = "sops_"

// envLine is one line of a dotenv file: KEY=VALUE, or a comment.
type envLine struct {
	comment    bool
	key, value string
}

// isDotenv reports whether data is a SOPS dotenv file: one with sops_mac and
// sops_lastmodified lines.
func isDotenv(data []byte) bool {
	var mac, modified bool
	for line := range bytes.Lines(data) {
		mac = mac || bytes.HasPrefix(line, []byte(dotenvPrefix+"mac="))
		modified = modified || bytes.HasPrefix(line, []byte(dotenvPrefix+"lastmodified="))
	}
	return mac && modified
}

// decryptDotenv is Decrypt for sops's dotenv form: every value is a string, and the
// metadata is flattened into sops_ lines.
func decryptDotenv(data []byte, ids []age.Identity) ([]byte, error) {
	lines, meta, err := parseDotenv(data)
	if err != nil {
		return nil, err
	}
	w, err := newDecrypter(meta, ids)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for _, l := range lines {
		if l.comment {
			// As sops: a comment that does not decrypt was written in plaintext.
			if plain, typ, err := decryptValue(w.key, l.value, ":"); err == nil && typ == "comment" {
				l.value = string(plain)
			}
			out.WriteString("#" + l.value + "\n")
			continue
		}
		n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: l.value}
		if err := w.leaf(n, []string{l.key}); err != nil {
			return nil, err
		}
		out.WriteString(l.key + "=" + strings.ReplaceAll(n.Value, "\n", `\n`) + "\n")
	}
	if err := w.checkMAC(meta); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// parseDotenv reads a dotenv file as sops does, with its metadata lines apart.
func parseDotenv(data []byte) ([]envLine, *metadata, error) {
	var lines []envLine
	flat := map[string]string{}
	for raw := range bytes.Lines(data) {
		line := strings.TrimSuffix(string(raw), "\n")
		switch k, v, ok := strings.Cut(line, "="); {
		case line == "":
		case line[0] == '#':
			lines = append(lines, envLine{comment: true, value: line[1:]})
		case !ok:
			return nil, nil, fmt.Errorf("not a SOPS dotenv file: a line is neither KEY=VALUE nor a comment")
		case strings.HasPrefix(k, dotenvPrefix):
			flat[strings.TrimPrefix(k, dotenvPrefix)] = strings.ReplaceAll(v, `\n`, "\n")
		default:
			lines = append(lines, envLine{key: k, value: strings.ReplaceAll(v, `\n`, "\n")})
		}
	}
	meta, err := unflatten(flat)
	return lines, meta, err
}

// ageStanzaKey is a flattened age stanza's field: age__list_N__map_FIELD.
var ageStanzaKey = regexp.MustCompile(`^age__list_(\d+)__map_(recipient|enc)$`)

// unflatten makes the metadata of a dotenv file's sops_ lines.
func unflatten(flat map[string]string) (*metadata, error) {
	meta := &metadata{LastModified: flat["lastmodified"], MAC: flat["mac"],
		UnencryptedSuffix: flat["unencrypted_suffix"], EncryptedSuffix: flat["encrypted_suffix"],
		UnencryptedRegex: flat["unencrypted_regex"], EncryptedRegex: flat["encrypted_regex"],
		UnencryptedCommentRegex: flat["unencrypted_comment_regex"], EncryptedCommentRegex: flat["encrypted_comment_regex"],
		MACOnlyEncrypted: flat["mac_only_encrypted"] == "true"}
	for k, v := range flat {
		if strings.HasPrefix(k, "key_groups") && len(meta.KeyGroups) == 0 {
			meta.KeyGroups = []yaml.Node{{}}
		}
		m := ageStanzaKey.FindStringSubmatch(k)
		if m == nil {
			continue
		}
		i, err := strconv.Atoi(m[1])
		if err != nil || i > len(flat) {
			return nil, fmt.Errorf("not a SOPS dotenv file: age stanza %s", m[1])
		}
		for len(meta.Age) <= i {
			meta.Age = append(meta.Age, ageStanza{})
		}
		if m[2] == "recipient" {
			meta.Age[i].Recipient = v
		} else {
			meta.Age[i].Enc = v
		}
	}
	return meta, nil
}
