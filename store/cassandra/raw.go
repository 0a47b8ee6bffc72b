package cassandra

import (
	"context"
	"math"
	"time"

	"github.com/gocql/gocql"

	"github.com/topk-charts/topk/listen"
)

// RawStore is the raw writer's store: it writes listens to raw_listens,
// deletes them there, and writes the users they name to users_by_prefix
// (the api's user search). Every write is idempotent: a row is keyed by
// what it holds (a listen's identity, a user's folded id), so writing it
// again overwrites it with the same values; listens and their deletes
// carry the write time of the record they come from (USING TIMESTAMP), so
// writing them again, in any order, leaves the same rows.
type RawStore struct{ s *gocql.Session }

// NewRawStore returns the store on s (opened on topk's keyspace).
func NewRawStore(s *gocql.Session) *RawStore { return &RawStore{s: s} }

const insertListen = `INSERT INTO raw_listens (user_id, day, played_at, identity,
 artist_name, track_name, album_name, track_id, artist_id, album_id, duration_ms, source, event_id)
 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`

// RawListen is a listen to write with the Cassandra write time (µs) of
// its cells.
type RawListen struct {
	Listen listen.Listen
	// WriteTime is the USING TIMESTAMP of the row's cells, in microseconds:
	// a later write of the row, or a delete of it, must have a larger one.
	WriteTime int64
}

// RawDelete takes back the listen at PlayedAt (its second) whose
// listen.MSID of its artist and track names is MSID.
type RawDelete struct {
	PlayedAt time.Time
	MSID     string
	// WriteTime is the tombstone's USING TIMESTAMP (µs): it removes the
	// cells written at or before it, not a later copy of the listen.
	WriteTime int64
}

// WriteListens writes listens, all of the raw_listens partition (user,
// day), as one unlogged batch, each row at its WriteTime. Optional fields
// that are empty, and durations StoresDuration refuses, are left unset: no
// null, so no tombstone, and a copy of a listen without them keeps what an
// earlier copy wrote.
func (r *RawStore) WriteListens(ctx context.Context, user string, day time.Time, listens []RawListen) error {
	b := r.s.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
	for _, rl := range listens {
		l := rl.Listen
		id := l.Identity()
		b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: insertListen, Idempotent: true, Args: []any{
			user, day, l.PlayedAt.UTC(), id[:],
			l.ArtistName, l.TrackName, optional(l.AlbumName), optional(l.TrackID), optional(l.ArtistID),
			optional(l.AlbumID), duration(l.DurationMS), optional(l.Source), optional(l.EventID),
			rl.WriteTime,
		}})
	}
	return r.s.ExecuteBatch(b)
}

const (
	selectSecond = `SELECT played_at, identity, artist_name, track_name FROM raw_listens
 WHERE user_id = ? AND day = ? AND played_at >= ? AND played_at < ?`
	deleteListen = `DELETE FROM raw_listens USING TIMESTAMP ? WHERE user_id = ? AND day = ? AND played_at = ? AND identity = ?`
)

// DeleteListen deletes the rows of the raw_listens partition (user, day)
// played in d's second whose artist and track names have d's msid (one
// row, unless rows of an older normalization share the names), each by
// its full primary key at d.WriteTime; it returns how many it found. A
// delete of a listen that is not there, or no longer, is no error (0).
// Reading first is needed: the msid does not give the identity (a hash of
// the normalized names), and a delete of the whole second would take
// other tracks played in it.
func (r *RawStore) DeleteListen(ctx context.Context, user string, day time.Time, d RawDelete) (int, error) {
	from := d.PlayedAt.UTC().Truncate(time.Second)
	iter := r.s.Query(selectSecond, user, day, from, from.Add(time.Second)).WithContext(ctx).Idempotent(true).Iter()
	type key struct {
		at time.Time
		id []byte
	}
	var found []key
	var at time.Time
	var id []byte
	var artist, track string
	for iter.Scan(&at, &id, &artist, &track) {
		if listen.MSID(artist, track) == d.MSID {
			found = append(found, key{at, append([]byte(nil), id...)})
		}
	}
	if err := iter.Close(); err != nil {
		return 0, err
	}
	switch len(found) {
	case 0:
		return 0, nil
	case 1:
		k := found[0]
		return 1, r.s.Query(deleteListen, d.WriteTime, user, day, k.at, k.id).WithContext(ctx).Idempotent(true).Exec()
	}
	b := r.s.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
	for _, k := range found {
		b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: deleteListen, Idempotent: true, Args: []any{d.WriteTime, user, day, k.at, k.id}})
	}
	return len(found), r.s.ExecuteBatch(b)
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
