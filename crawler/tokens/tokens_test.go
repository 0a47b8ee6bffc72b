package tokens

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testCipher(t *testing.T) *Cipher {
	t.Helper()
	c, err := New(bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSealOpenRoundTrip(t *testing.T) {
	c := testCipher(t)
	sealed := c.Seal("BQDx-access-token", "alice/spotify/access")
	if bytes.Contains(sealed, []byte("BQDx")) {
		t.Fatal("plaintext visible in the sealed value")
	}
	got, err := c.Open(sealed, "alice/spotify/access")
	if err != nil || got != "BQDx-access-token" {
		t.Fatalf("open: %q %v", got, err)
	}
	if again := c.Seal("BQDx-access-token", "alice/spotify/access"); bytes.Equal(again, sealed) {
		t.Fatal("two seals of the same token are equal: the nonce is not random")
	}
}

// A sealed value moved to another user or column, a flipped bit, or another
// key does not open.
func TestOpenRefusesForeignValues(t *testing.T) {
	c := testCipher(t)
	sealed := c.Seal("secret", "alice/spotify/refresh")
	if _, err := c.Open(sealed, "bob/spotify/refresh"); err == nil {
		t.Error("opened under another binding")
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if _, err := c.Open(tampered, "alice/spotify/refresh"); err == nil {
		t.Error("opened a tampered value")
	}
	other, _ := New(bytes.Repeat([]byte{8}, KeySize))
	if _, err := other.Open(sealed, "alice/spotify/refresh"); err == nil {
		t.Error("opened with another key")
	}
	if _, err := c.Open(sealed[:5], "alice/spotify/refresh"); err == nil {
		t.Error("opened a truncated value")
	}
}

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, KeySize)
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
		strings.Repeat("ab", KeySize),
		" " + base64.StdEncoding.EncodeToString(raw) + "\n",
	} {
		got, err := ParseKey(s)
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("%q: %x %v", s, got, err)
		}
	}
	for _, s := range []string{"short", base64.StdEncoding.EncodeToString(raw[:16]), "zz" + strings.Repeat("ab", KeySize-1)} {
		if _, err := ParseKey(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestLoadKeyRefusesWithoutKeyOrDevMode(t *testing.T) {
	_, err := LoadKey("", false, filepath.Join(t.TempDir(), "k"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if !errors.Is(err, ErrNoKey) {
		t.Fatalf("err %v, want ErrNoKey", err)
	}
}

// Dev mode generates a key once, says so, and every later process reads the same file.
func TestLoadKeyDevModeGeneratesOnceAndLogs(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	file := filepath.Join(t.TempDir(), "sub", "dev-token.key")
	k1, err := LoadKey("", true, file, log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "generated a development token key") {
		t.Fatalf("dev mode did not say it generated a key: %s", logs.String())
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	k2, err := LoadKey("", true, file, log)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second load: %v", err)
	}
	// An explicit key wins over dev mode.
	k3, err := LoadKey(strings.Repeat("cd", KeySize), true, file, log)
	if err != nil || bytes.Equal(k3, k1) {
		t.Fatalf("explicit key ignored: %v", err)
	}
}

// Rotation: a cipher with a new key and the old one as previous opens
// both, seals only with the new key, and says which key opened a value.
func TestPreviousKeysOpen(t *testing.T) {
	oldKey, newKey, otherKey := bytes.Repeat([]byte{7}, KeySize), bytes.Repeat([]byte{9}, KeySize), bytes.Repeat([]byte{5}, KeySize)
	old, _ := New(oldKey)
	sealedOld := old.Seal("refresh-1", "alice/refresh")
	rot, err := New(newKey, otherKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if pt, current, err := rot.OpenCurrent(sealedOld, "alice/refresh"); err != nil || pt != "refresh-1" || current {
		t.Fatalf("old value: %q current=%v %v", pt, current, err)
	}
	sealedNew := rot.Seal("refresh-2", "alice/refresh")
	if pt, current, err := rot.OpenCurrent(sealedNew, "alice/refresh"); err != nil || pt != "refresh-2" || !current {
		t.Fatalf("new value: %q current=%v %v", pt, current, err)
	}
	if _, err := old.Open(sealedNew, "alice/refresh"); err == nil {
		t.Fatal("a value sealed after rotation opens with the old key alone")
	}
	onlyNew, _ := New(newKey)
	if _, err := onlyNew.Open(sealedOld, "alice/refresh"); err == nil || !strings.Contains(err.Error(), "TOPK_TOKEN_KEY_PREVIOUS") {
		t.Fatalf("old value without the previous key: %v", err)
	}
	if _, err := New(newKey, []byte("short")); err == nil || !strings.Contains(err.Error(), "previous token key 1") {
		t.Fatalf("bad previous key: %v", err)
	}
}

func TestParseKeys(t *testing.T) {
	a := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, KeySize))
	b := strings.Repeat("ab", KeySize)
	keys, err := ParseKeys(" " + a + " ,, " + b + ",")
	if err != nil || len(keys) != 2 || keys[0][0] != 1 || keys[1][0] != 0xab {
		t.Fatalf("ParseKeys: %v %v", keys, err)
	}
	if keys, err := ParseKeys(""); err != nil || keys != nil {
		t.Fatalf("empty: %v %v", keys, err)
	}
	if _, err := ParseKeys(a + ",nope!"); err == nil || err.Error() != "TOPK_TOKEN_KEY_PREVIOUS, key 2: key is neither base64 nor 64 hex digits" {
		t.Fatalf("bad second key: %v", err)
	}
}
