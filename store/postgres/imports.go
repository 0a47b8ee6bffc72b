package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/imports"
	"github.com/topk-charts/topk/imports/uploads"
)

// imports: the status of uploaded history imports
// (schemas/postgres/0005_imports.sql), for imports/uploads.

var _ uploads.Store = (*Store)(nil)

// InsertImport records a new running import taken by host.
func (s *Store) InsertImport(ctx context.Context, st uploads.Status, host, spool string) error {
	counts, err := json.Marshal(st.Counts)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO imports (id, user_id, file_name, bytes, state, host, spool, counts, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`,
		st.ID, st.UserID, st.File, st.Bytes, st.State, host, spool, counts, st.Created)
	if err != nil {
		return fmt.Errorf("insert import: %w", err)
	}
	return nil
}

// UpdateImport writes st's state, counts, error, times and, when not nil,
// the checkpoint after. Progress writes are relaxed commits: a lost one
// only makes a resumed import send some records again.
func (s *Store) UpdateImport(ctx context.Context, st uploads.Status, after *imports.Position) error {
	counts, err := json.Marshal(st.Counts)
	if err != nil {
		return err
	}
	var a []byte
	if after != nil {
		if a, err = json.Marshal(after); err != nil {
			return err
		}
	}
	return s.relaxedTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE imports SET state = $2, counts = $3, error = $4, updated_at = $5, finished_at = $6,
			after = COALESCE($7, after) WHERE id = $1`,
			st.ID, st.State, counts, st.Error, st.Updated, st.Finished, a)
		return err
	})
}

const importColumns = `id, user_id, file_name, bytes, state, counts, error, created_at, updated_at, finished_at`

func scanImport(row pgx.Row, extra ...any) (uploads.Status, error) {
	var st uploads.Status
	var counts []byte
	dest := append([]any{&st.ID, &st.UserID, &st.File, &st.Bytes, &st.State, &counts, &st.Error, &st.Created, &st.Updated, &st.Finished}, extra...)
	if err := row.Scan(dest...); err != nil {
		return st, err
	}
	if err := json.Unmarshal(counts, &st.Counts); err != nil {
		return st, fmt.Errorf("import %s: counts: %w", st.ID, err)
	}
	st.Created, st.Updated = st.Created.UTC(), st.Updated.UTC()
	if st.Finished != nil {
		f := st.Finished.UTC()
		st.Finished = &f
	}
	return st, nil
}

// Import is user's import id; a topk.ErrNotFound naming "id" if user has
// no import of that id.
func (s *Store) Import(ctx context.Context, user, id string) (uploads.Status, error) {
	st, err := scanImport(s.pool.QueryRow(ctx, `SELECT `+importColumns+` FROM imports WHERE id = $1 AND user_id = $2`, id, user))
	if errors.Is(err, pgx.ErrNoRows) {
		return st, topk.NotFound("id", fmt.Sprintf("user %q has no import %q", user, id))
	}
	return st, err
}

// UnfinishedImports lists host's running imports, oldest first.
func (s *Store) UnfinishedImports(ctx context.Context, host string) ([]uploads.Unfinished, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+importColumns+`, spool, after FROM imports WHERE host = $1 AND state = 'running' ORDER BY created_at`, host)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []uploads.Unfinished
	for rows.Next() {
		var u uploads.Unfinished
		var after []byte
		if u.Status, err = scanImport(rows, &u.Spool, &after); err != nil {
			return nil, err
		}
		if after != nil {
			u.After = &imports.Position{}
			if err := json.Unmarshal(after, u.After); err != nil {
				return nil, fmt.Errorf("import %s: checkpoint: %w", u.ID, err)
			}
		}
		out = append(out, u)
	}
	return out, rows.Err()
}
