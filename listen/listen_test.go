package listen

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

func TestUnicodeTablesPinned(t *testing.T) {
	// A Go or x/text upgrade that changes the Unicode tables can change
	// identities: bump NormalizationVersion (and UnicodeVersion, and the
	// vectors) deliberately.
	if norm.Version != UnicodeVersion || cases.UnicodeVersion != UnicodeVersion {
		t.Fatalf("Unicode tables are norm %s, cases %s; NormalizationVersion %d was defined with %s",
			norm.Version, cases.UnicodeVersion, NormalizationVersion, UnicodeVersion)
	}
}

func TestIdentityLayout(t *testing.T) {
	// The documented byte layout, built independently.
	l := Listen{UserID: "alice", PlayedAt: time.Date(2026, 11, 28, 9, 15, 0, 0, time.UTC), ArtistName: "Radiohead", TrackName: "Reckoner"}
	var b []byte
	b = append(b, 0, 0, 0, 1)
	b = append(b, 0, 0, 0, 5)
	b = append(b, "alice"...)
	b = binary.BigEndian.AppendUint64(b, 1795857300)
	b = append(b, 0, 0, 0, 9)
	b = append(b, "radiohead"...)
	b = append(b, 0, 0, 0, 8)
	b = append(b, "reckoner"...)
	sum := sha256.Sum256(b)
	if got, want := l.Identity().String(), hex.EncodeToString(sum[:16]); got != want {
		t.Fatalf("identity %s, want %s", got, want)
	}
	if len(l.Identity().String()) != 32 {
		t.Fatal("identity hex is not 32 characters")
	}
	// Only user, second, artist and track count.
	m := l
	m.PlayedAt = m.PlayedAt.Add(999 * time.Millisecond)
	m.AlbumName, m.EventID, m.Source, m.DurationMS = "x", "y", "z", 1
	if m.Identity() != l.Identity() {
		t.Error("identity depends on more than user, second, artist, track")
	}
}

func TestItemKeyLayout(t *testing.T) {
	b := []byte{2, 0, 0, 0, 1, 0, 0, 0, 9}
	b = append(b, "radiohead"...)
	b = append(b, 0, 0, 0, 8)
	b = append(b, "reckoner"...)
	if got, want := TrackKey("Radiohead", "Reckoner"), xxhash.Sum64(b); got != want {
		t.Fatalf("TrackKey %x, want %x", got, want)
	}
	a := append([]byte{1, 0, 0, 0, 1, 0, 0, 0, 9}, "radiohead"...)
	if got, want := ArtistKey("Radiohead"), xxhash.Sum64(a); got != want {
		t.Fatalf("ArtistKey %x, want %x", got, want)
	}
	if AlbumKey("Radiohead", "") != 0 || AlbumKey("Radiohead", "\u3000") != 0 {
		t.Error("no album is not 0")
	}
	if ArtistKey("") == 0 || AlbumKey("x", "x") == 0 {
		t.Error("a key is 0")
	}
}

func TestDayKeyAndSplitKey(t *testing.T) {
	l := Listen{UserID: "björk fan", PlayedAt: time.Date(2026, 11, 28, 23, 59, 59, 0, time.UTC)}
	if l.Day() != "2026-11-28" || l.Key() != "björk fan|2026-11-28" {
		t.Fatalf("Day %s, Key %s", l.Day(), l.Key())
	}
	// The day is the UTC date, whatever the zone of PlayedAt.
	l.PlayedAt = time.Date(2026, 11, 29, 0, 30, 0, 0, time.FixedZone("CET", 3600))
	if l.Day() != "2026-11-28" {
		t.Fatalf("Day of 00:30+01:00 is %s", l.Day())
	}
	for _, c := range []struct {
		user string
		day  time.Time
	}{
		{"alice", time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)},
		{"a", time.Date(2002, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"ünïcødé user", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"u", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)},
	} {
		key := DayKey(c.user, c.day.Add(13*time.Hour))
		user, day, ok := SplitKey(key)
		if !ok || user != c.user || !day.Equal(c.day) || day.Location() != time.UTC {
			t.Errorf("SplitKey(%q) = %q, %v, %v", key, user, day, ok)
		}
		if DayKey(user, day) != key {
			t.Errorf("DayKey(SplitKey(%q)) = %q", key, DayKey(user, day))
		}
	}
	for _, key := range []string{
		"", "alice", "alice|", "|2026-11-28", "alice|2026-11-28|x", "a|b|2026-11-28",
		"alice|2026-1-28", "alice|2026-11-28 ", "alice|2026/11/28", "alice|2026-02-30",
		"alice|2026-13-01", "alice|2026-00-10", "alice|2026-11-00", "alice|+026-11-28",
		" alice|2026-11-28", "al\x00ice|2026-11-28", "al\xffice|2026-11-28",
	} {
		if u, d, ok := SplitKey(key); ok {
			t.Errorf("SplitKey(%q) = %q, %v, ok", key, u, d)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Listen{UserID: "alice", PlayedAt: testNow.Add(-time.Hour), ArtistName: "Radiohead", TrackName: "Reckoner"}
	if err := ok.Validate(testNow); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mod    func(*Listen)
		reason Reason
		field  string
	}{
		{func(l *Listen) { l.UserID = "" }, ReasonBadUserID, FieldUserID},
		{func(l *Listen) { l.UserID = "a|b" }, ReasonBadUserID, FieldUserID},
		{func(l *Listen) { l.UserID = "a\xff" }, ReasonBadString, FieldUserID},
		{func(l *Listen) { l.PlayedAt = time.Time{} }, ReasonPlayedAtOutOfRange, FieldPlayedAt},
		{func(l *Listen) { l.PlayedAt = testNow.Add(MaxFutureSkew + time.Second) }, ReasonPlayedAtOutOfRange, FieldPlayedAt},
		{func(l *Listen) { l.ArtistName = "" }, ReasonEmptyName, FieldArtistName},
		{func(l *Listen) { l.TrackName = "\t\u00a0" }, ReasonEmptyName, FieldTrackName},
		{func(l *Listen) { l.TrackName = "a\x00" }, ReasonBadName, FieldTrackName},
		{func(l *Listen) { l.AlbumName = "\x1b" }, ReasonBadName, FieldAlbumName},
		{func(l *Listen) { l.AlbumName = "\xc3" }, ReasonBadString, FieldAlbumName},
		{func(l *Listen) { l.TrackID = "\xc3" }, ReasonBadString, FieldTrackID},
		{func(l *Listen) { l.DurationMS = -1 }, ReasonBadDuration, FieldDurationMS},
		{func(l *Listen) { l.EventID = "\xff" }, ReasonBadString, FieldEventID},
	} {
		l := ok
		c.mod(&l)
		err := l.Validate(testNow)
		ie, isInvalid := err.(*InvalidError)
		if !isInvalid || ie.Reason != c.reason || ie.Field != c.field {
			t.Errorf("%+v: %v, want %s of %s", l, err, c.reason, c.field)
		}
	}
	// Not canonical, still valid, same as canonical.
	l := ok
	l.ArtistName, l.PlayedAt = "  Radio  head ", time.Date(2026, 11, 28, 12, 10, 0, 999, time.FixedZone("X", 7200))
	if l.Validate(testNow) != nil || l.Canonical().Validate(testNow) != nil {
		t.Errorf("non-canonical listen refused: %v", l.Validate(testNow))
	}
}

func TestCollapseSpace(t *testing.T) {
	for in, want := range map[string]string{
		"": "", " ": "", "a": "a", " a ": "a", "a  b": "a b", "a\tb": "a b", "a b": "a b",
		"\u3000a\u00a0\u00a0b\u2029": "a b", "a\u200bb": "a\u200bb", "a\xff  b": "a\xff b",
	} {
		if got := CollapseSpace(in); got != want {
			t.Errorf("CollapseSpace(%+q) = %+q, want %+q", in, got, want)
		}
	}
}

func TestItemKeysMatchTheMethods(t *testing.T) {
	for _, l := range []Listen{
		{ArtistName: "Björk", TrackName: "Jóga", AlbumName: "Homogenic"},
		{ArtistName: "RADIOHEAD ", TrackName: " reckoner"},
	} {
		a, tr, al := l.ItemKeys()
		if a != l.ArtistKey() || tr != l.TrackKey() || al != l.AlbumKey() {
			t.Fatalf("%+v: ItemKeys %d %d %d, methods %d %d %d", l, a, tr, al, l.ArtistKey(), l.TrackKey(), l.AlbumKey())
		}
	}
}
