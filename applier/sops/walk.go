package sops

import (
	"crypto/sha512"
	"fmt"
	"hash"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"gopkg.in/yaml.v3"
)

// macOnlyEncryptedInit starts the MAC of a document with mac_only_encrypted, as sops
// does, so that it never equals the MAC over every value.
var macOnlyEncryptedInit = []byte{0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0xb, 0xb, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69}

// walker decrypts a document's values in place, in document order, and sums the MAC.
type walker struct {
	key  []byte
	mac  hash.Hash
	only bool // mac_only_encrypted
	// Which values sops encrypted: the suffix and regex options of its metadata.
	unencSuffix, encSuffix string
	unencRegex, encRegex   *regexp.Regexp
}

// newDecrypter opens the document's data key and makes the walker that decrypts with it.
func newDecrypter(meta *metadata, ids []age.Identity) (*walker, error) {
	key, err := dataKey(meta, ids)
	if err != nil {
		return nil, err
	}
	return newWalker(meta, key)
}

func newWalker(meta *metadata, key []byte) (*walker, error) {
	if meta.UnencryptedCommentRegex != "" || meta.EncryptedCommentRegex != "" {
		return nil, fmt.Errorf("%w: it chooses values to encrypt by comments (--encrypted-comment-regex); use --encrypted-regex or the default", ErrUnsupported)
	}
	w := &walker{key: key, mac: sha512.New(), only: meta.MACOnlyEncrypted,
		unencSuffix: meta.UnencryptedSuffix, encSuffix: meta.EncryptedSuffix}
	if w.only {
		w.mac.Write(macOnlyEncryptedInit)
	}
	var err error
	if w.unencRegex, err = compileOption(meta.UnencryptedRegex); err != nil {
		return nil, err
	}
	if w.encRegex, err = compileOption(meta.EncryptedRegex); err != nil {
		return nil, err
	}
	return w, nil
}

func compileOption(expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("%w: its regex %q: %v", ErrUnsupported, expr, err)
	}
	return re, nil
}

// walk visits n; path is the keys leading to it (a list's items share its path).
func (w *walker) walk(n *yaml.Node, path []string) error {
	n.HeadComment, n.LineComment, n.FootComment = "", "", ""
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			k.HeadComment, k.LineComment, k.FootComment = "", "", ""
			if err := w.walk(n.Content[i+1], append(slices.Clip(path), k.Value)); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if err := w.walk(c, path); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		return w.leaf(n, path)
	default:
		return fmt.Errorf("%w: it uses YAML anchors or aliases", ErrUnsupported)
	}
	return nil
}

// leaf decrypts one value when sops encrypted it, and adds it to the MAC.
func (w *walker) leaf(n *yaml.Node, path []string) error {
	if n.Tag == "!!null" {
		return nil // sops neither encrypts nor sums nulls
	}
	encrypted := w.encrypted(path)
	var plain []byte
	var err error
	switch {
	case encrypted && n.Value == "":
		// sops leaves empty strings as they are.
	case encrypted:
		var typ string
		if plain, typ, err = decryptValue(w.key, n.Value, strings.Join(path, ":")+":"); err != nil {
			return fmt.Errorf("value %s: %w", strings.Join(path, "."), err)
		}
		if plain, err = setScalar(n, plain, typ); err != nil {
			return fmt.Errorf("value %s: %w", strings.Join(path, "."), err)
		}
	default:
		if plain, err = macBytes(n); err != nil {
			return fmt.Errorf("value %s: %w", strings.Join(path, "."), err)
		}
	}
	if encrypted || !w.only {
		w.mac.Write(plain)
	}
	return nil
}

// encrypted reports whether sops encrypted the value at path, by the same rules.
func (w *walker) encrypted(path []string) bool {
	anyKey := func(match func(string) bool) bool { return slices.ContainsFunc(path, match) }
	enc := true
	if w.unencSuffix != "" && anyKey(func(k string) bool { return strings.HasSuffix(k, w.unencSuffix) }) {
		enc = false
	}
	if w.encSuffix != "" {
		enc = anyKey(func(k string) bool { return strings.HasSuffix(k, w.encSuffix) })
	}
	if w.unencRegex != nil && anyKey(w.unencRegex.MatchString) {
		enc = false
	}
	if w.encRegex != nil {
		enc = anyKey(w.encRegex.MatchString)
	}
	return enc
}

// setScalar makes n the decrypted value, typed as sops recorded, and returns the bytes
// sops sums into the MAC for it.
func setScalar(n *yaml.Node, plain []byte, typ string) ([]byte, error) {
	s := string(plain)
	n.Style = 0
	switch typ {
	case "str", "bytes":
		n.Tag, n.Value = "!!str", s
		return plain, nil
	case "int":
		v, err := strconv.Atoi(s)
		n.Tag, n.Value = "!!int", s
		return []byte(strconv.Itoa(v)), err
	case "float":
		v, err := strconv.ParseFloat(s, 64)
		n.Tag, n.Value = "!!float", strconv.FormatFloat(v, 'f', -1, 64)
		return []byte(n.Value), err
	case "bool":
		v, err := strconv.ParseBool(s)
		n.Tag, n.Value = "!!bool", strconv.FormatBool(v)
		return boolBytes(v), err
	case "time":
		var t time.Time
		err := t.UnmarshalText(plain)
		n.Tag, n.Value = "!!timestamp", s
		return plain, err
	}
	return nil, fmt.Errorf("%w: unknown value type %q", ErrUnsupported, typ)
}

// macBytes is what sops sums for a value it left in plaintext.
func macBytes(n *yaml.Node) ([]byte, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case string:
		return []byte(v), nil
	case int:
		return []byte(strconv.Itoa(v)), nil
	case float64:
		return []byte(strconv.FormatFloat(v, 'f', -1, 64)), nil
	case bool:
		return boolBytes(v), nil
	case time.Time:
		return v.MarshalText()
	}
	return nil, fmt.Errorf("%w: a %T value", ErrUnsupported, v)
}

func boolBytes(v bool) []byte {
	if v {
		return []byte("True")
	}
	return []byte("False")
}
