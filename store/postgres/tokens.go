package postgres

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/listen"
)

// api_tokens: users' API tokens, the credential of the ListenBrainz api
// (Authorization: Token …). Only each token's SHA-256 is stored
// (schemas/postgres/0004_api_tokens.sql says why a fast hash is right);
// the token leaves this file once, as CreateToken's result.

// maxTokenBytes bounds what Authenticate hashes and looks up: a token
// this package makes has 36 bytes; anything much longer is not one.
const maxTokenBytes = 128

// lastUsedEvery is how stale last_used_at may get: Authenticate writes it
// at most once per token per this interval, so a scrobbler's steady
// stream of submissions costs reads, not writes.
const lastUsedEvery = time.Minute

// newToken is a random UUID v4 (RFC 9562) from crypto/rand: 122 random
// bits in ListenBrainz's token format, which some clients check.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])  // crypto/rand.Read does not fail (it crashes the program if the system's source does)
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // variant 10
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// tokenHash is what api_tokens stores of a token.
func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// tokenPrefixLen is how many of a token's first characters listings show.
const tokenPrefixLen = 8

// checkTokenUser applies the event contract's user_id rules (the user's
// listens will carry it) and, like a registration, refuses '/' (the id is
// part of api paths): a *topk.Error of kind topk.ErrInvalid naming user.
func checkTokenUser(user string) error {
	now := time.Now()
	probe := listen.Listen{UserID: user, PlayedAt: now, ArtistName: "a", TrackName: "t"}
	if err := probe.Validate(now); err != nil {
		var ie *listen.InvalidError
		if errors.As(err, &ie) {
			return topk.Invalid("user", "user id: "+ie.Detail)
		}
		return topk.Invalid("user", err.Error())
	}
	if strings.Contains(user, "/") {
		return topk.Invalid("user", "user id: must not contain '/' (it is part of api paths)")
	}
	return nil
}

// CreateToken makes a new API token for user and returns it with its
// record; it is the only time the token is seen, since only its hash is
// stored. A user without a users row gets one (display name empty): a
// scrobbler's user needs no provider account, and may register one later.
// A user id breaking the event contract's rules, or holding '/', is a
// topk.ErrInvalid naming "user".
func (s *Store) CreateToken(ctx context.Context, user string) (string, topk.TokenInfo, error) {
	info := topk.TokenInfo{UserID: user}
	if err := checkTokenUser(user); err != nil {
		return "", info, err
	}
	token := newToken()
	info.Prefix = token[:tokenPrefixLen]
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO users (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`, user); err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
		return tx.QueryRow(ctx, `INSERT INTO api_tokens (user_id, token_hash, prefix) VALUES ($1, $2, $3) RETURNING id, created_at`,
			user, tokenHash(token), info.Prefix).Scan(&info.ID, &info.CreatedAt)
	})
	if err != nil {
		return "", info, fmt.Errorf("create token of %s: %w", user, err)
	}
	return token, info, nil
}

// Authenticate returns the user whose valid (unrevoked) token this is;
// ok is false for any other string. It is one indexed lookup by the
// token's hash (so no comparison of secrets runs in Go, and none needs
// constant time); the same statement records the use in last_used_at
// when the last one is older than a minute.
func (s *Store) Authenticate(ctx context.Context, token string) (user string, ok bool, err error) {
	if token == "" || len(token) > maxTokenBytes {
		return "", false, nil
	}
	// The UPDATE's condition is on the row it locks (a), not on what the
	// SELECT read (t): of concurrent uses, one writes and the others,
	// rechecking the row after its lock, do not.
	err = s.pool.QueryRow(ctx, `WITH t AS (
			SELECT id, user_id FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL
		), used AS (
			UPDATE api_tokens a SET last_used_at = now() FROM t
			WHERE a.id = t.id AND (a.last_used_at IS NULL OR a.last_used_at < now() - make_interval(secs => $2))
		)
		SELECT user_id FROM t`, tokenHash(token), lastUsedEvery.Seconds()).Scan(&user)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("authenticate token: %w", err)
	}
	return user, true, nil
}

// ListTokens lists user's tokens, revoked ones included, oldest first;
// empty for a user without tokens (or without a users row).
func (s *Store) ListTokens(ctx context.Context, user string) ([]topk.TokenInfo, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, user_id, prefix, created_at, last_used_at, revoked_at
		FROM api_tokens WHERE user_id = $1 ORDER BY id`, user)
	if err != nil {
		return nil, fmt.Errorf("list tokens of %s: %w", user, err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (topk.TokenInfo, error) {
		var t topk.TokenInfo
		err := r.Scan(&t.ID, &t.UserID, &t.Prefix, &t.CreatedAt, &t.LastUsedAt, &t.RevokedAt)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens of %s: %w", user, err)
	}
	return list, nil
}

// RevokeTokens revokes every valid token of user and returns how many it
// revoked (0 for a user without any). Revocation takes effect at once:
// Authenticate reads the row every time.
func (s *Store) RevokeTokens(ctx context.Context, user string) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL`, user)
	if err != nil {
		return 0, fmt.Errorf("revoke tokens of %s: %w", user, err)
	}
	return int(tag.RowsAffected()), nil
}

// RevokeToken revokes user's token id; a topk.ErrNotFound naming "id" if
// user has no valid token with that id (another user's, already revoked,
// or none).
func (s *Store) RevokeToken(ctx context.Context, user string, id int64) error {
	tag, err := s.pool.Exec(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`, id, user)
	if err != nil {
		return fmt.Errorf("revoke token %d of %s: %w", id, user, err)
	}
	if tag.RowsAffected() == 0 {
		return topk.NotFound("id", fmt.Sprintf("user %q has no valid token with id %d", user, id))
	}
	return nil
}
