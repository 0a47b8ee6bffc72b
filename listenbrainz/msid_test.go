package listenbrainz

import (
	"strings"
	"testing"
)

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
