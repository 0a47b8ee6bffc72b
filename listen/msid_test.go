package listen

import (
	"strings"
	"testing"
)

// TestUUIDv5 pins the version 5 construction to Python's uuid.uuid5.
func TestUUIDv5(t *testing.T) {
	dns := [16]byte{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	for _, c := range []struct {
		ns   [16]byte
		name string
		want string
	}{
		{dns, "python.org", "886313e1-3b8a-5372-9b90-0c9aee199e5d"},                  // uuid.uuid5(uuid.NAMESPACE_DNS, "python.org")
		{msidNamespace, "1:6:artist5:track", "2a8b1e69-5b1f-5dff-aed9-c9ac5723ba4a"}, // uuid.uuid5(UUID("b05e4450-…"), "1:6:artist5:track")
	} {
		if got := uuidV5(c.ns, []byte(c.name)); got != c.want {
			t.Errorf("%q: %s, want %s", c.name, got, c.want)
		}
	}
	if got := FormatUUID(msidNamespace); got != "b05e4450-9131-4818-9892-b2a377cedd8c" {
		t.Errorf("namespace %s", got)
	}
}

// TestMSID: one msid for every spelling that normalizes the same, another
// for anything else.
func TestMSID(t *testing.T) {
	want := "2a8b1e69-5b1f-5dff-aed9-c9ac5723ba4a" // NormalizationVersion 1
	for _, p := range [][2]string{
		{"Artist", "Track"},
		{"ARTIST", "track"},
		{"  Artist\t", "Track\u00a0 "},
		{"artist", "TRACK"},
	} {
		if got := MSID(p[0], p[1]); got != want {
			t.Errorf("MSID(%q, %q) = %s, want %s", p[0], p[1], got, want)
		}
	}
	// Unicode normalization and case folding: é as one or two code points,
	// ß and SS.
	if MSID("Café", "Straße") != MSID("CAFE\u0301", "STRASSE") {
		t.Error("NFC and case folding do not give one msid")
	}
	seen := map[string][2]string{}
	for _, p := range [][2]string{
		{"Artist", "Track"}, {"Artist", "Track 2"}, {"Track", "Artist"},
		{"ab", "c"}, {"a", "bc"}, {"a b", "c"}, {"a", "b c"},
		{"", "x"}, {"x", ""}, {"Artist", "Track\u200b"},
	} {
		m := MSID(p[0], p[1])
		if q, dup := seen[m]; dup {
			t.Errorf("%q and %q share msid %s", p, q, m)
		}
		seen[m] = p
		if !canonicalUUID(m) || m[14] != '5' || !strings.ContainsRune("89ab", rune(m[19])) {
			t.Errorf("%s is not a canonical version 5 UUID", m)
		}
	}
}
