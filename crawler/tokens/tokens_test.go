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
