package sops

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"filippo.io/age"
	"gopkg.in/yaml.v3"
)

func identities(t *testing.T, file string) []age.Identity {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func vector(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// sameYAML compares two documents by content: sops -d keeps comments, Decrypt drops them.
func sameYAML(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := yaml.Unmarshal(got, &g); err != nil {
		t.Fatalf("output is not YAML: %v\n%s", err, got)
	}
	if err := yaml.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("decrypted\n%s\nwant (sops decrypt)\n%s", got, want)
	}
}

func TestDecryptVectors(t *testing.T) {
	ids := identities(t, "test.agekey")
	for _, tc := range []struct {
		file  string
		exact bool // byte for byte what sops decrypt writes
	}{
		{"app.enc.yaml", false},
		{"app.regex.enc.yaml", false},
		{"app.enc.json", true},
		{"password.enc.txt", true},
		{"password.reenc.txt", true},
		{"password2.enc.txt", true},
		{"app.enc.env", true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data := vector(t, tc.file)
			if !IsEncrypted(data) {
				t.Fatal("IsEncrypted = false for a sops document")
			}
			got, err := Decrypt(tc.file, data, ids)
			if err != nil {
				t.Fatal(err)
			}
			want := vector(t, filepath.Join("plain", tc.file+".sops-d"))
			if tc.exact {
				if !bytes.Equal(got, want) {
					t.Errorf("decrypted\n%q\nwant (sops decrypt)\n%q", got, want)
				}
				return
			}
			sameYAML(t, got, want)
		})
	}
}

func TestIsEncryptedPlainFiles(t *testing.T) {
	for _, name := range []string{"plain/app.yaml", "plain/app.json", "plain/password.txt", "plain/app.env"} {
		if IsEncrypted(vector(t, name)) {
			t.Errorf("IsEncrypted(%s) = true for a plain file", name)
		}
	}
	if IsEncrypted([]byte("sops: the word alone\n")) {
		t.Error("IsEncrypted = true for a document whose sops key is not SOPS metadata")
	}
}

func TestDecryptWrongIdentity(t *testing.T) {
	_, err := Decrypt("password.other.txt", vector(t, "password.other.txt"), identities(t, "test.agekey"))
	var nr *NotRecipientError
	if !errors.As(err, &nr) || !errors.Is(err, ErrNotRecipient) {
		t.Fatalf("err = %v, want a NotRecipientError", err)
	}
	if want := identities(t, "other.agekey")[0].(*age.X25519Identity).Recipient().String(); !reflect.DeepEqual(nr.Recipients, []string{want}) {
		t.Errorf("recipients = %v, want [%s]", nr.Recipients, want)
	}
}

func TestDecryptTampered(t *testing.T) {
	yamlDoc := string(vector(t, "app.enc.yaml"))
	lines := strings.Split(yamlDoc, "\n")
	var user, password string
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, "    user: "); ok {
			user = v
		}
		if v, ok := strings.CutPrefix(l, "    password: "); ok {
			password = v
		}
	}
	for name, doc := range map[string]string{
		// A plaintext value is in the MAC too.
		"plain value changed": strings.Replace(yamlDoc, "api_token_unencrypted: visible", "api_token_unencrypted: changed", 1),
		// A value moved to another key does not decrypt: its path is its additional data.
		"values swapped":     strings.NewReplacer(user, password, password, user).Replace(yamlDoc),
		"value removed":      strings.Replace(yamlDoc, "    user: "+user+"\n", "", 1),
		"lastmodified moved": strings.Replace(yamlDoc, `lastmodified: "2026`, `lastmodified: "2027`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			if doc == yamlDoc {
				t.Fatal("the test changed nothing")
			}
			_, err := Decrypt("app.enc.yaml", []byte(doc), identities(t, "test.agekey"))
			if !errors.Is(err, ErrMAC) {
				t.Fatalf("err = %v, want ErrMAC", err)
			}
		})
	}
}

func TestDecryptDotenvTampered(t *testing.T) {
	doc := strings.Replace(string(vector(t, "app.enc.env")), "PUBLIC_unencrypted=visible", "PUBLIC_unencrypted=changed", 1)
	if _, err := Decrypt("app.enc.env", []byte(doc), identities(t, "test.agekey")); !errors.Is(err, ErrMAC) {
		t.Fatalf("err = %v, want ErrMAC", err)
	}
}

func TestDecryptUnsupported(t *testing.T) {
	doc := strings.Replace(string(vector(t, "app.enc.yaml")), "    age:", "    pgp:", 1)
	_, err := Decrypt("app.enc.yaml", []byte(doc), identities(t, "test.agekey"))
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported (no age recipient)", err)
	}
}
