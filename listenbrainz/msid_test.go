package listenbrainz

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
	if got := formatUUID(msidNamespace); got != "b05e4450-9131-4818-9892-b2a377cedd8c" {
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
		if u, ok := ParseMSID(m); !ok || u != m || m[14] != '5' || !strings.ContainsRune("89ab", rune(m[19])) {
			t.Errorf("%s is not a canonical version 5 UUID", m)
		}
	}
}

// TestParseMSID: the forms Python's uuid.UUID accepts and refuses (each
// checked with CPython 3.11), canonical out.
func TestParseMSID(t *testing.T) {
	const u = "9541592c-0102-4b94-93cc-ee0f3ef89d63"
	hex := strings.ReplaceAll(u, "-", "")
	for in, want := range map[string]string{
		u:                            u,
		strings.ToUpper(u):           u,
		hex:                          u,
		"{" + u + "}":                u,
		"{{{" + hex + "}":            u,
		"urn:uuid:" + u:              u,
		"urn:" + u:                   u,
		"uuid:" + u:                  u,
		"uurn:uid:" + u:              u, // "urn:" removed first, then "uuid:"
		hex[:8] + "-----" + hex[8:]:  u,
		"0x" + hex[2:]:               "0041592c-0102-4b94-93cc-ee0f3ef89d63",
		"0X_" + hex[3:]:              "0001592c-0102-4b94-93cc-ee0f3ef89d63",
		"+" + hex[1:]:                "0541592c-0102-4b94-93cc-ee0f3ef89d63",
		" " + hex[1:]:                "0541592c-0102-4b94-93cc-ee0f3ef89d63",
		hex[1:] + "\u3000":           "0541592c-0102-4b94-93cc-ee0f3ef89d63",
		hex[:4] + "_" + hex[5:]:      "0954192c-0102-4b94-93cc-ee0f3ef89d63",
		strings.Repeat("\u0661", 32): "11111111-1111-1111-1111-111111111111",
		"-" + hex:                    u, // every hyphen is removed
	} {
		got, ok := ParseMSID(in)
		if !ok || got != want {
			t.Errorf("ParseMSID(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{
		"", u[:35], u + "0", "g" + hex[1:], "0x" + hex, "+" + hex, "{" + hex + "]",
		"0x__" + hex[4:], "__" + hex[2:], hex[:31] + "_", "\u001c" + hex[1:], "é" + hex[1:], "urn:uuid:" + u[1:],
	} {
		if got, ok := ParseMSID(in); ok {
			t.Errorf("ParseMSID(%q) = %q, want refused", in, got)
		}
	}
}
