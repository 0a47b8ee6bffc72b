package tokens

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the AES-256 key length in bytes.
const KeySize = 32

// version is the first byte of every sealed value, so a later key rotation
// can tell formats apart.
const version byte = 1

// ErrNoKey is returned by LoadKey when no key is configured and dev mode is off.
var ErrNoKey = errors.New("TOPK_TOKEN_KEY is not set: provider tokens are encrypted at rest and need a 32-byte key " +
	"(generate one with `openssl rand -base64 32`), or set TOPK_DEV_MODE=1 to generate a local development key")

// Cipher seals and opens tokens. It is safe for concurrent use.
type Cipher struct {
	aead cipher.AEAD
}

// New returns a Cipher for a 32-byte key.
func New(key []byte) (*Cipher, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("token key has %d bytes, want %d (AES-256)", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Cipher{aead: aead}, nil
}

// Seal encrypts plaintext. binding (e.g. "alice/spotify/refresh") is
// authenticated but not stored: a sealed value copied to another user or
// another column does not open. The output is version || nonce || ciphertext.
func (c *Cipher) Seal(plaintext, binding string) []byte {
	nonce := make([]byte, c.aead.NonceSize(), 1+c.aead.NonceSize()+len(plaintext)+c.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	out := append([]byte{version}, nonce...)
	return c.aead.Seal(out, nonce, []byte(plaintext), []byte(binding))
}

// Open decrypts a value made by Seal with the same binding.
func (c *Cipher) Open(sealed []byte, binding string) (string, error) {
	ns := c.aead.NonceSize()
	if len(sealed) < 1+ns+c.aead.Overhead() {
		return "", errors.New("sealed token too short")
	}
	if sealed[0] != version {
		return "", fmt.Errorf("sealed token has unknown format version %d", sealed[0])
	}
	pt, err := c.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], []byte(binding))
	if err != nil {
		return "", errors.New("sealed token does not open with this key (wrong TOPK_TOKEN_KEY, or tampered)")
	}
	return string(pt), nil
}

// ParseKey reads a 32-byte key written as standard or URL-safe base64 or as
// 64 hex digits.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("TOPK_TOKEN_KEY decodes to %d bytes, want %d", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("TOPK_TOKEN_KEY is neither base64 nor 64 hex digits")
}

// LoadKey returns the key of value (TOPK_TOKEN_KEY). When value is empty and
// dev is true, it reads devFile, creating it with a fresh random key first
// if needed, and logs a warning that it did; when value is empty and dev is
// false it returns ErrNoKey: a service never runs with tokens it cannot keep.
func LoadKey(value string, dev bool, devFile string, log *slog.Logger) ([]byte, error) {
	if value != "" {
		return ParseKey(value)
	}
	if !dev {
		return nil, ErrNoKey
	}
	if b, err := os.ReadFile(devFile); err == nil {
		key, err := ParseKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("dev token key %s: %w", devFile, err)
		}
		log.Warn("TOPK_DEV_MODE: using the development token key; set TOPK_TOKEN_KEY in production", "file", devFile)
		return key, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("dev token key: %w", err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(devFile), 0o700); err != nil {
		return nil, fmt.Errorf("dev token key: %w", err)
	}
	f, err := os.OpenFile(devFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // another process won the race: use its key
		return LoadKey(value, dev, devFile, log)
	}
	if err != nil {
		return nil, fmt.Errorf("dev token key: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("dev token key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("dev token key: %w", err)
	}
	log.Warn("TOPK_DEV_MODE: generated a development token key; tokens sealed with it are readable by anyone with this file. Set TOPK_TOKEN_KEY in production", "file", devFile)
	return key, nil
}
