package main

import (
	"bytes"
	"context"
	"maps"
	"testing"
	"time"

	"github.com/topk-charts/topk/imports"
	"github.com/topk-charts/topk/listen"
)

// TestArchiveAsImportsReadsIt: the generator's expectation (each file's
// counts by reason, the distinct listens and their plays per item) is
// what package imports reads from the archive and what counting each
// identity once gives.
func TestArchiveAsImportsReadsIt(t *testing.T) {
	now := time.Now().UTC()
	h := generate(archiveConfig{Streams: 6000, Years: 3, PerFile: 1500, Dups: 10, Offline: 3, Now: now, Seed: 7})
	var buf bytes.Buffer
	if err := h.write(&buf); err != nil {
		t.Fatal(err)
	}
	ids := map[listen.Identity]listen.Listen{}
	accepted := 0
	rep, err := imports.Read(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()), "my_spotify_data.zip",
		imports.Options{User: "bench", Now: now}, func(rec imports.Record) error {
			accepted++
			ids[rec.Listen.Identity()] = rec.Listen
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range h.files {
		got := rep.File(f.name)
		if got == nil {
			t.Fatalf("%s: not in the report", f.name)
		}
		if got.Read != f.read || got.Accepted != f.accepted {
			t.Errorf("%s: read %d accepted %d, want %d and %d", f.name, got.Read, got.Accepted, f.read, f.accepted)
		}
		if !maps.Equal(reasonMap(got.Skipped), f.skipped) || !maps.Equal(reasonMap(got.Refused), f.refused) {
			t.Errorf("%s: skipped %v refused %v, want %v and %v", f.name, got.Skipped, got.Refused, f.skipped, f.refused)
		}
	}
	if len(rep.Files) != len(h.files)+1 { // and the PDF
		t.Errorf("%d files in the report, want %d", len(rep.Files), len(h.files)+1)
	}
	_, acc, skipped, refused := h.totals()
	if accepted != acc {
		t.Errorf("%d records accepted, want %d", accepted, acc)
	}
	if len(ids) != len(h.listens) {
		t.Errorf("%d distinct listens, want %d", len(ids), len(h.listens))
	}
	if acc == len(h.listens) || skipped[reasonTooShort] == 0 || skipped[reasonEpisode] == 0 || skipped[reasonNoMetadata] == 0 || refused[reasonOutOfRange] != 3 {
		t.Errorf("the archive lacks a case: accepted %d, distinct %d, skipped %v, refused %v", acc, len(h.listens), skipped, refused)
	}
	// Plays per track by the keys topk uses, against the expectation by name.
	want := h.count(0, 1<<30)
	got := map[itemKey]int64{}
	for _, l := range ids {
		got[itemKey{artist: l.ArtistName, name: l.TrackName}]++
	}
	if !maps.Equal(got, want.tracks) {
		t.Errorf("plays per track differ: %d tracks read, %d expected", len(got), len(want.tracks))
	}
	last := h.listens[len(h.listens)-1]
	if day := time.Unix(last.sec, 0).UTC().Truncate(24 * time.Hour); !day.Equal(now.Truncate(24 * time.Hour)) {
		t.Errorf("the last listen is on %s, not today", day.Format(time.DateOnly))
	}
}

func reasonMap(m map[imports.Reason]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[string(k)] = v
	}
	return out
}
