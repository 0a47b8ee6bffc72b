package rawwriter

import (
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk/listen"
)

func encode(t *testing.T, l listen.Listen) []byte {
	t.Helper()
	b, err := listen.Codec{}.Encode(l)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGroupByPartitionAndIdentity(t *testing.T) {
	at := time.Date(2026, 11, 28, 9, 15, 0, 0, time.UTC)
	a := listen.Listen{UserID: "alice", PlayedAt: at, ArtistName: "Radiohead", TrackName: "Reckoner", EventID: "1"}
	aDup := a
	a.DurationMS, a.AlbumName = 215000, "In Rainbows"
	aDup.ArtistName, aDup.EventID = "RADIOHEAD", "2" // same identity, other spelling, no duration or album
	a2 := a
	a2.PlayedAt = at.Add(time.Minute)
	bob := a
	bob.UserID = "bob"
	late := a
	late.PlayedAt = at.Add(-24 * time.Hour)
	var batch []*sarama.ConsumerMessage
	for i, l := range []*listen.Listen{&a, &a2, nil, &bob, nil, &aDup, &late, &a} {
		m := &sarama.ConsumerMessage{Offset: int64(i)}
		if l != nil {
			m.Key, m.Value = []byte(l.Key()), encode(t, *l)
		}
		batch = append(batch, m)
	}
	batch[2].Key, batch[2].Value = []byte("alice|2026-11-28"), []byte("not json")
	batch[7].Key = []byte("bob|2026-11-28") // alice's listen under bob's key
	groups, bad := group(batch, time.Now())
	if len(bad) != 3 || bad[0].msg.Offset != 2 || bad[1].msg.Offset != 4 || bad[2].msg.Offset != 7 ||
		bad[0].reason != "undecodable" || bad[1].reason != "undecodable" || bad[2].reason != "wrong_key" {
		t.Fatalf("bad records %+v, want offsets 2 and 4 undecodable, 7 wrong_key", bad)
	}
	if len(groups) != 3 {
		t.Fatalf("%d groups, want 3 (alice today, bob today, alice yesterday)", len(groups))
	}
	g := groups[0]
	if g.user != "alice" || !g.day.Equal(time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)) || len(g.listens) != 2 {
		t.Fatalf("first group %s %v with %d listens, want alice 2026-11-28 with 2", g.user, g.day, len(g.listens))
	}
	if l := g.listens[0].Listen; l.EventID != "2" || l.ArtistName != "RADIOHEAD" || l.DurationMS != 215000 || l.AlbumName != "In Rainbows" {
		t.Errorf("a duplicate identity merges to %+v, want the later copy with the earlier duration and album", l)
	}
	if groups[2].day.Format(listen.DayLayout) != "2026-11-27" {
		t.Errorf("late listen grouped on %v", groups[2].day)
	}
}

func TestConfig(t *testing.T) {
	if err := (Config{}).Validate(); err == nil {
		t.Error("no brokers accepted")
	}
	if _, err := New(Config{Brokers: []string{"x"}}, nil); err == nil {
		t.Error("nil session accepted")
	}
	if Group("") != "topk-raw-writer" || Group("t1") != "t1.topk-raw-writer" {
		t.Error("group names")
	}
}
