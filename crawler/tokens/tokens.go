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
//
// It seals with one key and opens with that key or any previous one
// (TOPK_TOKEN_KEY_PREVIOUS), which is how the key is rotated: services run
// with the new key and the old ones as previous, `topk tokens rekey`
// re-seals every stored token with the new key, then the previous keys are
// removed (docs/SECURITY.md).
type Cipher struct {
	aead     cipher.AEAD
	previous []cipher.AEAD
}

// New returns a Cipher sealing with key (32 bytes) and opening with key or
// any of previous.
func New(key []byte, previous ...[]byte) (*Cipher, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	c := &Cipher{aead: aead}
	for i, k := range previous {
		a, err := newAEAD(k)
		if err != nil {
			return nil, fmt.Errorf("previous token key %d: %w", i+1, err)
		}
		c.previous = append(c.previous, a)
	}
	return c, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("token key has %d bytes, want %d (AES-256)", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
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

// Open decrypts a value made by Seal with the same binding, with the key
// or a previous one.
func (c *Cipher) Open(sealed []byte, binding string) (string, error) {
	pt, _, err := c.OpenCurrent(sealed, binding)
	return pt, err
}

// OpenCurrent is Open that also reports whether the value was sealed with
// the current key (false: a previous key opened it, so it needs re-sealing).
func (c *Cipher) OpenCurrent(sealed []byte, binding string) (plaintext string, current bool, err error) {
	ns := c.aead.NonceSize()
	if len(sealed) < 1+ns+c.aead.Overhead() {
		return "", false, errors.New("sealed token too short")
	}
	if sealed[0] != version {
		return "", false, fmt.Errorf("sealed token has unknown format version %d", sealed[0])
	}
	for i, a := range append([]cipher.AEAD{c.aead}, c.previous...) {
		if pt, err := a.Open(nil, sealed[1:1+ns], sealed[1+ns:], []byte(binding)); err == nil {
			return string(pt), i == 0, nil
		}
	}
	return "", false, errors.New("sealed token does not open with this key (wrong TOPK_TOKEN_KEY or TOPK_TOKEN_KEY_PREVIOUS, or tampered)")
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
				return nil, fmt.Errorf("key decodes to %d bytes, want %d", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("key is neither base64 nor 64 hex digits")
}

// ParseKeys reads TOPK_TOKEN_KEY_PREVIOUS: keys as ParseKey reads them,
// separated by commas; empty: none.
func ParseKeys(s string) ([][]byte, error) {
	var keys [][]byte
	for i, k := range strings.Split(s, ",") {
		if strings.TrimSpace(k) == "" {
			continue
		}
		b, err := ParseKey(k)
		if err != nil {
			return nil, fmt.Errorf("TOPK_TOKEN_KEY_PREVIOUS, key %d: %w", i+1, err)
		}
		keys = append(keys, b)
	}
	return keys, nil
}

// LoadKey returns the key of value (TOPK_TOKEN_KEY). When value is empty and
// dev is true, it reads devFile, creating it with a fresh random key first
// if needed, and logs a warning that it did; when value is empty and dev is
// false it returns ErrNoKey: a service never runs with tokens it cannot keep.
func LoadKey(value string, dev bool, devFile string, log *slog.Logger) ([]byte, error) {
	if value != "" {
		k, err := ParseKey(value)
		if err != nil {
			return nil, fmt.Errorf("TOPK_TOKEN_KEY: %w", err)
		}
		return k, nil
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
