package cassandra

import (
	"context"
	"math"
	"time"

	"github.com/gocql/gocql"

	"github.com/topk-charts/topk/listen"
)

// RawStore is the raw writer's store: it writes listens to raw_listens and
// the users they name to users_by_prefix (the api's user search). Every
// write is idempotent: a row is keyed by what it holds (a listen's
// identity, a user's folded id), so writing it again overwrites it with
// the same values.
type RawStore struct{ s *gocql.Session }

// NewRawStore returns the store on s (opened on topk's keyspace).
func NewRawStore(s *gocql.Session) *RawStore { return &RawStore{s: s} }

const insertListen = `INSERT INTO raw_listens (user_id, day, played_at, identity,
 artist_name, track_name, album_name, track_id, artist_id, album_id, duration_ms, source, event_id)
 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// WriteListens writes listens, all of the raw_listens partition (user,
// day), as one unlogged batch. Optional fields that are empty, and
// durations StoresDuration refuses, are left unset: no null, so no
// tombstone, and a copy of a listen without them keeps what an earlier
// copy wrote.
func (r *RawStore) WriteListens(ctx context.Context, user string, day time.Time, listens []listen.Listen) error {
	b := r.s.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
	for _, l := range listens {
		id := l.Identity()
		b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: insertListen, Idempotent: true, Args: []any{
			user, day, l.PlayedAt.UTC(), id[:],
			l.ArtistName, l.TrackName, optional(l.AlbumName), optional(l.TrackID), optional(l.ArtistID),
			optional(l.AlbumID), duration(l.DurationMS), optional(l.Source), optional(l.EventID),
		}})
	}
	return r.s.ExecuteBatch(b)
}

// WriteKnownUser records user for the api's user search: one single-row
// insert (the row is its own partition's, no batch).
func (r *RawStore) WriteKnownUser(ctx context.Context, user string) error {
	return r.s.Query(InsertKnownUser, KnownUserArgs(user)...).WithContext(ctx).Idempotent(true).Exec()
}

// optional leaves an absent field unset.
func optional(s string) any {
	if s == "" {
		return gocql.UnsetValue
	}
	return s
}

// StoresDuration reports whether WriteListens stores a duration:
// duration_ms is an int column, and 0 (unknown) and values past 2^31 ms
// (24 days: not a track) stay unset.
func StoresDuration(ms int64) bool { return ms > 0 && ms <= math.MaxInt32 }

// duration is the duration_ms value of ms.
func duration(ms int64) any {
	if !StoresDuration(ms) {
		return gocql.UnsetValue
	}
	return int32(ms)
}
