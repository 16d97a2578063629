package sops

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"fmt"
	"regexp"
)

// encValue matches one encrypted value as sops writes it.
var encValue = regexp.MustCompile(`^ENC\[AES256_GCM,data:(.*),iv:(.+),tag:(.+),type:(.+)\]$`)

// decryptValue opens one ENC[...] value with the data key; aad is the value's path as
// sops joins it ("a:b:"). It returns the plaintext bytes and sops's type name.
func decryptValue(key []byte, value, aad string) ([]byte, string, error) {
	m := encValue.FindStringSubmatch(value)
	if m == nil {
		return nil, "", fmt.Errorf("%w: a value that should be encrypted is not an ENC[AES256_GCM,...] value", ErrMAC)
	}
	var parts [3][]byte
	for i, s := range m[1:4] {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, "", fmt.Errorf("%w: an encrypted value is not base64", ErrMAC)
		}
		parts[i] = b
	}
	data, iv, tag := parts[0], parts[1], parts[2]
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, "", fmt.Errorf("data key: %w", err)
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, len(iv))
	if err != nil {
		return nil, "", fmt.Errorf("%w: nonce of %d bytes", ErrMAC, len(iv))
	}
	plain, err := gcm.Open(nil, iv, append(data, tag...), []byte(aad))
	if err != nil {
		return nil, "", fmt.Errorf("%w: a value does not decrypt (it was changed or moved)", ErrMAC)
	}
	return plain, m[4], nil
}
