package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/topk-charts/topk/crawler/provider"
)

// provider_accounts: where a user's listens come from, with the user's
// provider tokens sealed under TOPK_TOKEN_KEY. Every token this package
// writes goes through seal and every token it reads through open.

// binding ties a sealed token to its user and kind (the AEAD's additional
// data): a token copied to another row or column does not open.
func binding(user, kind string) string { return user + "/" + kind }

func (s *Store) seal(user, kind, token string) []byte {
	return s.cipher.Seal(token, binding(user, kind))
}

func (s *Store) open(user, kind string, sealed []byte) (string, error) {
	t, err := s.cipher.Open(sealed, binding(user, kind))
	if err != nil {
		return "", fmt.Errorf("%s token of %s: %w", kind, user, err)
	}
	return t, nil
}

// expiry is a token expiry as a nullable column.
func expiry(t provider.Tokens) *time.Time {
	if t.Expiry.IsZero() {
		return nil
	}
	return &t.Expiry
}

// insertAccount creates user's provider account; only the tokens given are
// sealed, the others stay NULL.
func (s *Store) insertAccount(ctx context.Context, tx pgx.Tx, user, prov, externalID string, t provider.Tokens) error {
	var access, refresh []byte
	if t.Access != "" {
		access = s.seal(user, "access", t.Access)
	}
	if t.Refresh != "" {
		refresh = s.seal(user, "refresh", t.Refresh)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO provider_accounts (user_id, provider, external_id, access_token, refresh_token, token_expiry)
			VALUES ($1, $2, $3, $4, $5, $6)`, user, prov, externalID, access, refresh, expiry(t)); err != nil {
		return fmt.Errorf("insert provider account: %w", err)
	}
	return nil
}

// SaveTokens seals and stores refreshed tokens.
func (s *Store) SaveTokens(ctx context.Context, user string, t provider.Tokens) error {
	_, err := s.pool.Exec(ctx, `UPDATE provider_accounts SET access_token = $2, refresh_token = $3, token_expiry = $4, updated_at = now()
		WHERE user_id = $1`, user, s.seal(user, "access", t.Access), s.seal(user, "refresh", t.Refresh), expiry(t))
	return err
}

// tokens reads and opens user's tokens.
func (s *Store) tokens(ctx context.Context, tx pgx.Tx, user string) (provider.Tokens, error) {
	var t provider.Tokens
	var access, refresh []byte
	var exp *time.Time
	if err := tx.QueryRow(ctx, `SELECT access_token, refresh_token, token_expiry FROM provider_accounts WHERE user_id = $1`, user).
		Scan(&access, &refresh, &exp); err != nil {
		return t, err
	}
	var err error
	if access != nil {
		if t.Access, err = s.open(user, "access", access); err != nil {
			return t, err
		}
	}
	if refresh != nil {
		if t.Refresh, err = s.open(user, "refresh", refresh); err != nil {
			return t, err
		}
	}
	if exp != nil {
		t.Expiry = *exp
	}
	return t, nil
}
