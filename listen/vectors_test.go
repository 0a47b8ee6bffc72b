package listen

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// vectors is testdata/vectors.json, the contract's shared test vectors
// (see its $comment for the meaning of each section).
type vectors struct {
	NormalizationVersion int       `json:"normalization_version"`
	UnicodeVersion       string    `json:"unicode_version"`
	Now                  time.Time `json:"now"`
	Normalize            []struct {
		Name string `json:"name"`
		In   string `json:"in"`
		Out  string `json:"out"`
	} `json:"normalize"`
	Identity []struct {
		Name     string          `json:"name"`
		Record   json.RawMessage `json:"record"`
		Identity string          `json:"identity"`
	} `json:"identity"`
	IdentityEqual  []vectorPair `json:"identity_equal"`
	IdentityDiffer []vectorPair `json:"identity_differ"`
	ItemKeys       []struct {
		Name      string `json:"name"`
		Artist    string `json:"artist"`
		Track     string `json:"track"`
		Album     string `json:"album"`
		ArtistKey string `json:"artist_key"`
		TrackKey  string `json:"track_key"`
		AlbumKey  string `json:"album_key"`
	} `json:"item_keys"`
	Validation []validationVector `json:"validation"`
}

type vectorPair struct {
	Name string          `json:"name"`
	A    json.RawMessage `json:"a"`
	B    json.RawMessage `json:"b"`
}

type validationVector struct {
	Name      string          `json:"name"`
	Raw       *string         `json:"raw"`
	RawBase64 string          `json:"raw_base64"`
	PadTo     int             `json:"pad_to"`
	OK        bool            `json:"ok"`
	Reason    Reason          `json:"reason"`
	Field     string          `json:"field"`
	Expect    json.RawMessage `json:"expect"`
}

// bytes builds the record of v as the $comment of the file says.
func (v validationVector) bytes(t *testing.T) []byte {
	t.Helper()
	var raw []byte
	switch {
	case v.RawBase64 != "":
		b, err := base64.StdEncoding.DecodeString(v.RawBase64)
		if err != nil {
			t.Fatalf("raw_base64: %v", err)
		}
		raw = b
	case v.Raw == nil:
		return nil
	default:
		raw = []byte(*v.Raw)
	}
	if v.PadTo > 0 {
		end := bytes.LastIndexByte(raw, '}')
		n := v.PadTo - len(raw) - len(`,"pad":""`)
		if end < 0 || n < 0 {
			t.Fatalf("cannot pad %d bytes to %d", len(raw), v.PadTo)
		}
		padded := append([]byte{}, raw[:end]...)
		padded = append(padded, `,"pad":"`+strings.Repeat("x", n)+`"`...)
		raw = append(padded, raw[end:]...)
		if len(raw) != v.PadTo {
			t.Fatalf("padded to %d bytes, want %d", len(raw), v.PadTo)
		}
	}
	return raw
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if v.NormalizationVersion != NormalizationVersion || v.UnicodeVersion != UnicodeVersion {
		t.Fatalf("vectors are for normalization version %d, Unicode %s; package has %d, %s",
			v.NormalizationVersion, v.UnicodeVersion, NormalizationVersion, UnicodeVersion)
	}
	if len(v.Normalize) == 0 || len(v.Identity) == 0 || len(v.IdentityEqual) == 0 ||
		len(v.IdentityDiffer) == 0 || len(v.ItemKeys) == 0 || len(v.Validation) == 0 {
		t.Fatal("a section of the vectors is empty")
	}
	return v
}

// mustParseRecord parses a vector's record, which must be valid at now.
func mustParseRecord(t *testing.T, rec json.RawMessage, now time.Time) Listen {
	t.Helper()
	l, err := Parse(rec, now)
	if err != nil {
		t.Fatalf("record %s: %v", rec, err)
	}
	return l
}

func TestVectorsNormalize(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.Normalize {
		if got := Normalize(c.In); got != c.Out {
			t.Errorf("%s: Normalize(%+q) = %+q, want %+q", c.Name, c.In, got, c.Out)
		}
		if got := Normalize(c.Out); got != c.Out {
			t.Errorf("%s: Normalize not idempotent: Normalize(%+q) = %+q", c.Name, c.Out, got)
		}
	}
}

func TestVectorsIdentity(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.Identity {
		l := mustParseRecord(t, c.Record, v.Now)
		if got := l.Identity().String(); got != c.Identity {
			t.Errorf("%s: identity %s, want %s", c.Name, got, c.Identity)
		}
		if got := l.Derive().Identity.String(); got != c.Identity {
			t.Errorf("%s: Derive().Identity %s, want %s", c.Name, got, c.Identity)
		}
	}
	for _, c := range v.IdentityEqual {
		a, b := mustParseRecord(t, c.A, v.Now), mustParseRecord(t, c.B, v.Now)
		if a.Identity() != b.Identity() {
			t.Errorf("%s: identities differ: %s vs %s", c.Name, a.Identity(), b.Identity())
		}
	}
	for _, c := range v.IdentityDiffer {
		a, b := mustParseRecord(t, c.A, v.Now), mustParseRecord(t, c.B, v.Now)
		if a.Identity() == b.Identity() {
			t.Errorf("%s: identities equal: %s", c.Name, a.Identity())
		}
	}
}

func TestVectorsItemKeys(t *testing.T) {
	v := loadVectors(t)
	hex := uint64Hex
	for _, c := range v.ItemKeys {
		if got := hex(ArtistKey(c.Artist)); got != c.ArtistKey {
			t.Errorf("%s: ArtistKey %s, want %s", c.Name, got, c.ArtistKey)
		}
		if got := hex(TrackKey(c.Artist, c.Track)); got != c.TrackKey {
			t.Errorf("%s: TrackKey %s, want %s", c.Name, got, c.TrackKey)
		}
		if got := hex(AlbumKey(c.Artist, c.Album)); got != c.AlbumKey {
			t.Errorf("%s: AlbumKey %s, want %s", c.Name, got, c.AlbumKey)
		}
		l := Listen{ArtistName: c.Artist, TrackName: c.Track, AlbumName: c.Album}
		if l.ArtistKey() != ArtistKey(c.Artist) || l.TrackKey() != TrackKey(c.Artist, c.Track) || l.AlbumKey() != AlbumKey(c.Artist, c.Album) {
			t.Errorf("%s: Listen methods disagree with the functions", c.Name)
		}
		if d := l.Derive(); d.ArtistKey != l.ArtistKey() || d.TrackKey != l.TrackKey() || d.AlbumKey != l.AlbumKey() || d.Identity != l.Identity() {
			t.Errorf("%s: Derive disagrees with the methods: %+v", c.Name, d)
		}
	}
}

func TestVectorsValidation(t *testing.T) {
	v := loadVectors(t)
	seen := map[Reason]bool{}
	for _, c := range v.Validation {
		raw := c.bytes(t)
		l, err := Parse(raw, v.Now)
		if !c.OK {
			seen[c.Reason] = true
			ie, ok := err.(*InvalidError)
			switch {
			case err == nil:
				t.Errorf("%s: accepted %+v, want %s", c.Name, l, c.Reason)
			case !ok:
				t.Errorf("%s: error %T %v, want *InvalidError", c.Name, err, err)
			case ie.Reason != c.Reason || (c.Field != "" && ie.Field != c.Field):
				t.Errorf("%s: %s (field %q), want %s (field %q); %v", c.Name, ie.Reason, ie.Field, c.Reason, c.Field, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if err := l.Validate(v.Now); err != nil {
			t.Errorf("%s: Parse accepted, Validate: %v", c.Name, err)
		}
		if c.Expect != nil {
			var want Listen
			if err := json.Unmarshal(c.Expect, &want); err != nil {
				t.Fatalf("%s: expect: %v", c.Name, err)
			}
			if l != want {
				t.Errorf("%s:\n got %+v\nwant %+v", c.Name, l, want)
			}
		}
	}
	for _, r := range Reasons() {
		if !seen[r] {
			t.Errorf("no validation vector for reason %s", r)
		}
	}
}

// uint64Hex writes k as 16 lowercase hex digits.
func uint64Hex(k uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[k&0xf]
		k >>= 4
	}
	return string(b[:])
}
