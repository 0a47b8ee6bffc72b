package ingest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"

	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/processors"
)

func start(t *testing.T) *tester.Tester {
	t.Helper()
	return startWith(t, Config{})
}

// startWith runs the ingest graph on a Goka tester at a fixed clock.
func startWith(t *testing.T, cfg Config) *tester.Tester {
	t.Helper()
	tt := tester.New(t)
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	cfg.Now = func() time.Time { return now }
	p, err := goka.NewProcessor(nil, Graph(cfg),
		goka.WithTester(tt), goka.WithNilHandling(goka.NilProcess))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor: %v", err)
		}
	})
	return tt
}

func TestValidListenIsKeyedUserDay(t *testing.T) {
	tt := start(t)
	tp := listen.NewTopics("")
	valid := tt.NewQueueTracker(string(tp.Valid))
	// Any key or none: the raw key is advisory.
	tt.Consume(string(tp.Raw), "", []byte(`{"user_id":"alice","played_at":"2026-11-28T09:15:00+01:00","artist_name":"Radiohead","track_name":"Reckoner"}`))
	k, v, ok := valid.Next()
	if !ok {
		t.Fatal("nothing on user.listen.valid")
	}
	l := v.(listen.Listen)
	if k != "alice|2026-11-28" || l.UserID != "alice" || !l.PlayedAt.Equal(time.Date(2026, 11, 28, 8, 15, 0, 0, time.UTC)) {
		t.Fatalf("key %q listen %+v", k, l)
	}
}

func TestBadInputGoesToDLQWithOriginalBytes(t *testing.T) {
	tt := start(t)
	tp := listen.NewTopics("")
	valid := tt.NewQueueTracker(string(tp.Valid))
	dlq := tt.NewQueueTracker(string(tp.DLQ))
	bad := [][]byte{
		nil,
		[]byte(""),
		[]byte("not json"),
		[]byte(`[1,2]`),
		[]byte(`{"user_id":"a|b","played_at":"2026-11-28T09:15:00Z","artist_name":"x","track_name":"y"}`),
		[]byte(`{"user_id":"a","played_at":"1999-01-01T00:00:00Z","artist_name":"x","track_name":"y"}`),
		[]byte(`{"user_id":"a","played_at":"2026-11-28T09:15:00Z","artist_name":"","track_name":"y"}`),
		append([]byte(`{"user_id":"a","pad":"`), append(make([]byte, 11<<10), []byte(`"}`)...)...),
		{0xff, 0xfe, 0x00},
	}
	for _, b := range bad {
		tt.Consume(string(tp.Raw), "k", b)
	}
	for i, b := range bad {
		h, key, v, ok := dlq.NextWithHeaders()
		if !ok {
			t.Fatalf("dead letter %d missing", i)
		}
		if string(v.([]byte)) != string(b) {
			t.Errorf("dead letter %d carries %q, want the original bytes", i, v)
		}
		if len(h[processors.HeaderReason]) == 0 || string(h[processors.HeaderTopic]) != string(tp.Raw) ||
			string(h[processors.HeaderOffset]) != strconv.Itoa(i) || string(h[processors.HeaderStage]) != Stage {
			t.Errorf("dead letter %d headers %q", i, h)
		}
		if key != processors.DeadLetterKey(string(tp.Raw), 0, int64(i)) {
			t.Errorf("dead letter %d key %q", i, key)
		}
	}
	if _, _, ok := valid.Next(); ok {
		t.Fatal("a bad record reached user.listen.valid")
	}
}

func TestLongNameGoesToDLQ(t *testing.T) {
	rec := func(field, name string) []byte {
		names := map[string]string{"artist_name": "Radiohead", "track_name": "Reckoner", "album_name": "In Rainbows"}
		names[field] = name
		return []byte(`{"user_id":"alice","played_at":"2026-11-28T09:15:00Z","artist_name":"` + names["artist_name"] +
			`","track_name":"` + names["track_name"] + `","album_name":"` + names["album_name"] + `"}`)
	}
	for _, tc := range []struct {
		cfg Config
		max int
	}{{Config{}, listen.DefaultMaxNameChars}, {Config{MaxNameChars: 40}, 40}} {
		tt := startWith(t, tc.cfg)
		tp := listen.NewTopics("")
		valid := tt.NewQueueTracker(string(tp.Valid))
		dlq := tt.NewQueueTracker(string(tp.DLQ))
		for _, field := range []string{"artist_name", "track_name", "album_name"} {
			// Exactly at the limit (two bytes a character) passes ...
			tt.Consume(string(tp.Raw), "alice", rec(field, strings.Repeat("ø", tc.max)))
			if _, _, ok := valid.Next(); !ok {
				t.Errorf("limit %d: %s of %d characters did not reach user.listen.valid", tc.max, field, tc.max)
			}
			// ... one more is a dead letter with its own reason.
			long := rec(field, strings.Repeat("ø", tc.max+1))
			tt.Consume(string(tp.Raw), "alice", long)
			h, _, v, ok := dlq.NextWithHeaders()
			if !ok {
				t.Fatalf("limit %d: %s of %d characters: no dead letter", tc.max, field, tc.max+1)
			}
			if got := string(h[processors.HeaderReason]); got != string(listen.ReasonNameTooLong) {
				t.Errorf("limit %d: %s: reason %q, want %s", tc.max, field, got, listen.ReasonNameTooLong)
			}
			if d := string(h[processors.HeaderDetail]); !strings.Contains(d, field) || !strings.Contains(d, strconv.Itoa(tc.max+1)) {
				t.Errorf("limit %d: detail %q does not name %s and its length", tc.max, d, field)
			}
			if string(v.([]byte)) != string(long) {
				t.Errorf("limit %d: %s: dead letter does not carry the original bytes", tc.max, field)
			}
		}
		if _, _, ok := valid.Next(); ok {
			t.Errorf("limit %d: a long name reached user.listen.valid", tc.max)
		}
	}
}

// TestDeleteIsKeyedUserDay: a delete record goes to user.listen.valid
// under its user-day, in the form the aggregator and the raw writer read;
// a bad one goes to the DLQ with its reason.
func TestDeleteIsKeyedUserDay(t *testing.T) {
	tt := start(t)
	tp := listen.NewTopics("")
	valid := tt.NewQueueTracker(string(tp.Valid))
	dlq := tt.NewQueueTracker(string(tp.DLQ))
	msid := listen.MSID("Radiohead", "Reckoner")
	tt.Consume(string(tp.Raw), "alice", []byte(` {"delete":{"user_id":"alice","played_at":"2026-11-28T09:15:00+01:00","recording_msid":"`+msid+`"}}`))
	k, v, ok := valid.Next()
	if !ok {
		t.Fatal("nothing on user.listen.valid")
	}
	b, err := listen.Codec{}.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	d, err := listen.DecodeDelete(b)
	if err != nil || k != "alice|2026-11-28" || d.MSID != msid || !d.PlayedAt.Equal(time.Date(2026, 11, 28, 8, 15, 0, 0, time.UTC)) {
		t.Fatalf("key %q delete %+v %v", k, d, err)
	}
	for _, bad := range []string{
		`{"delete":{"user_id":"alice","played_at":"2026-11-28T09:15:00Z"}}`,
		`{"delete":{"user_id":"alice","played_at":"2026-11-28T09:15:00Z","recording_msid":"` + strings.ToUpper(msid) + `"}}`,
		`{"delete":{"user_id":"alice","played_at":"2027-11-28T09:15:00Z","recording_msid":"` + msid + `"}}`,
		`{"delete":{"user_id":"alice","played_at":"2026-11-28T09:15:00Z","recording_msid":"` + msid + `","extra":1}}`,
	} {
		tt.Consume(string(tp.Raw), "alice", []byte(bad))
		if _, _, ok := valid.Next(); ok {
			t.Errorf("%s reached user.listen.valid", bad)
		}
		if _, _, ok := dlq.Next(); !ok {
			t.Errorf("%s: no dead letter", bad)
		}
	}
}
