package redis

import (
	"context"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// NowPlaying keeps each user's ListenBrainz playing-now listen under
// <Prefix>playing-now:<user> with its TTL. The keys live in the main
// database beside Asynq's; they expire on their own, so a maxmemory
// policy of volatile-* may evict them early (they are not listens: a
// lost one only empties a user's "playing now" until the next).
type NowPlaying struct {
	Client *goredis.Client
	// Prefix starts every key (the namespace; default "topk:").
	Prefix string
}

func (n NowPlaying) key(user string) string {
	p := n.Prefix
	if p == "" {
		p = "topk:"
	}
	return p + "playing-now:" + user
}

// SetNowPlaying keeps v for ttl.
func (n NowPlaying) SetNowPlaying(ctx context.Context, user string, v []byte, ttl time.Duration) error {
	return n.Client.Set(ctx, n.key(user), v, ttl).Err()
}

// GetNowPlaying is what is kept for user; ok false when nothing is.
func (n NowPlaying) GetNowPlaying(ctx context.Context, user string) ([]byte, bool, error) {
	v, err := n.Client.Get(ctx, n.key(user)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}
