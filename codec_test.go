package topk

import (
	"errors"
	"reflect"
	"testing"
)

func TestItemCodecRoundTrip(t *testing.T) {
	items := []Item{{Key: 1, Name: "Song", Artist: "Band", Plays: 3, First: 1_700_000_000}, {Key: 1<<63 + 5, Plays: 1 << 40, First: -5},
		{Key: 7, Name: "ü", Plays: 0},
		{Key: 8, Name: "Radiohead", Plays: 5, First: 100, Spellings: []Spelling{{"RADIOHEAD", 2, 90}, {"Radiohead", 3, 100}}}}
	var b []byte
	size := 0
	for i := range items {
		b = AppendItem(b, &items[i])
		size += ItemSize(&items[i])
	}
	if len(b) > size {
		t.Errorf("encoded %d bytes, ItemSize bound %d", len(b), size)
	}
	d := NewDecoder(b)
	for i, want := range items {
		if got := d.Item(); !reflect.DeepEqual(got, want) {
			t.Errorf("item %d = %+v, want %+v", i, got, want)
		}
	}
	if !d.Done() {
		t.Errorf("not done after reading everything: err %v", d.Err())
	}
}

// Truncated or lying input is ErrCorrupt, never a panic or a huge
// allocation.
func TestDecoderRejectsCorruptInput(t *testing.T) {
	full := AppendItem(nil, &Item{Key: 9, Name: "name", Artist: "artist", Plays: 300, First: 1 << 40,
		Spellings: []Spelling{{"NAME", 100, 1 << 41}, {"name", 200, 1 << 40}}})
	for n := range len(full) {
		d := NewDecoder(full[:n])
		d.Item()
		if !errors.Is(d.Err(), ErrCorrupt) {
			t.Errorf("truncated to %d bytes: err %v, want ErrCorrupt", n, d.Err())
		}
	}
	d := NewDecoder([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 1})
	if n := d.Count(1); n != 0 || !errors.Is(d.Err(), ErrCorrupt) {
		t.Errorf("count beyond the input = %d, err %v", n, d.Err())
	}
	d = NewDecoder(nil)
	if d.Byte(); !errors.Is(d.Err(), ErrCorrupt) {
		t.Error("byte of empty input: no error")
	}
}

func TestCompareRanksByPlaysThenNames(t *testing.T) {
	a := Item{Key: 2, Name: "a", Plays: 5}
	b := Item{Key: 1, Name: "b", Plays: 5}
	c := Item{Key: 3, Name: "a", Plays: 9}
	d := Item{Key: 1, Name: "a", Plays: 5}
	if Compare(&c, &a) >= 0 || Compare(&a, &b) >= 0 || Compare(&d, &a) >= 0 || Compare(&a, &a) != 0 {
		t.Error("order is not plays desc, name, artist, key")
	}
}
