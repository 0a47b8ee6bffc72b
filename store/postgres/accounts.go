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

// RekeyResult counts what Rekey did with the stored provider accounts.
type RekeyResult struct {
	// Accounts is how many rows were read.
	Accounts int `json:"accounts"`
	// Resealed rows had a token sealed with a previous key and now have
	// both sealed with the current one.
	Resealed int `json:"resealed"`
	// Current rows were sealed with the current key already.
	Current int `json:"current"`
	// Changed rows were updated by someone else (a token refresh, which
	// seals with the current key) between the read and the write; they are
	// left as that writer left them.
	Changed int `json:"changed"`
	// Unreadable rows have a token that opens with no configured key; they
	// are left untouched and listed by user.
	Unreadable []string `json:"unreadable"`
}

// Rekey re-seals every stored provider token that a previous key sealed
// with the current key (the second step of a key rotation; see
// tokens.Cipher). Each row is rewritten only if it still holds what was
// read (a crawl refreshing the tokens meanwhile wins). progress, if not
// nil, is called after each row with the rows done and the total.
func (s *Store) Rekey(ctx context.Context, progress func(done, total int)) (RekeyResult, error) {
	r := RekeyResult{Unreadable: []string{}}
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM provider_accounts`).Scan(&total); err != nil {
		return r, fmt.Errorf("count provider accounts: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT user_id, access_token, refresh_token FROM provider_accounts ORDER BY user_id`)
	if err != nil {
		return r, fmt.Errorf("read provider accounts: %w", err)
	}
	type account struct {
		user            string
		access, refresh []byte
	}
	var accounts []account
	for rows.Next() {
		var a account
		if err := rows.Scan(&a.user, &a.access, &a.refresh); err != nil {
			rows.Close()
			return r, fmt.Errorf("read provider accounts: %w", err)
		}
		accounts = append(accounts, a)
	}
	if err := rows.Err(); err != nil {
		return r, fmt.Errorf("read provider accounts: %w", err)
	}
	total = max(total, len(accounts))
	for _, a := range accounts {
		r.Accounts++
		access, refresh, current, err := s.reseal(a.user, a.access, a.refresh)
		switch {
		case err != nil:
			r.Unreadable = append(r.Unreadable, a.user)
		case current:
			r.Current++
		default:
			tag, err := s.pool.Exec(ctx, `UPDATE provider_accounts SET access_token = $2, refresh_token = $3, updated_at = now()
				WHERE user_id = $1 AND access_token IS NOT DISTINCT FROM $4 AND refresh_token IS NOT DISTINCT FROM $5`,
				a.user, access, refresh, a.access, a.refresh)
			if err != nil {
				return r, fmt.Errorf("reseal tokens of %s: %w", a.user, err)
			}
			if tag.RowsAffected() == 1 {
				r.Resealed++
			} else {
				r.Changed++
			}
		}
		if progress != nil {
			progress(r.Accounts, total)
		}
	}
	return r, nil
}

// reseal opens a row's sealed tokens (NULL stays NULL) and seals them again
// with the current key; current reports that every token already was.
func (s *Store) reseal(user string, access, refresh []byte) (newAccess, newRefresh []byte, current bool, err error) {
	current = true
	one := func(kind string, sealed []byte) ([]byte, error) {
		if sealed == nil {
			return nil, nil
		}
		t, cur, err := s.cipher.OpenCurrent(sealed, binding(user, kind))
		if err != nil {
			return nil, fmt.Errorf("%s token of %s: %w", kind, user, err)
		}
		current = current && cur
		return s.seal(user, kind, t), nil
	}
	if newAccess, err = one("access", access); err != nil {
		return nil, nil, false, err
	}
	if newRefresh, err = one("refresh", refresh); err != nil {
		return nil, nil, false, err
	}
	return newAccess, newRefresh, current, nil
}
