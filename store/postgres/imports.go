package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/topk-charts/topk"
)

// imports: the status of uploaded history imports
// (schemas/postgres/0005_imports.sql). imports/uploads keeps its status
// here through cmd/topk's adapter; the counts and the checkpoint are its
// JSON, stored as they are (this package imports no import code).

// ImportRow is one row of imports.
type ImportRow struct {
	ID, UserID, File string
	Bytes            int64
	State            string
	Counts           json.RawMessage // the importer's report so far
	Error            string
	Created, Updated time.Time
	Finished         *time.Time
	// Host and Spool: the api copy that holds the upload, and where.
	Host, Spool string
	// After is the checkpoint (JSON; nil: none yet).
	After json.RawMessage
}

// InsertImport records a new import.
func (s *Store) InsertImport(ctx context.Context, r ImportRow) error {
	if len(r.Counts) == 0 {
		r.Counts = json.RawMessage("{}")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO imports (id, user_id, file_name, bytes, state, host, spool, counts, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`,
		r.ID, r.UserID, r.File, r.Bytes, r.State, r.Host, r.Spool, []byte(r.Counts), r.Created)
	if err != nil {
		return fmt.Errorf("insert import: %w", err)
	}
	return nil
}

// UpdateImport writes r's state, counts, error, update and finish times
// and, when r.After is not nil, the checkpoint. The writes are relaxed
// commits: a lost one only makes a resumed import send some records
// again, which the pipeline counts once.
func (s *Store) UpdateImport(ctx context.Context, r ImportRow) error {
	var after []byte
	if r.After != nil {
		after = r.After
	}
	return s.relaxedTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE imports SET state = $2, counts = $3, error = $4, updated_at = $5, finished_at = $6,
			after = COALESCE($7, after) WHERE id = $1`,
			r.ID, r.State, []byte(r.Counts), r.Error, r.Updated, r.Finished, after)
		return err
	})
}

const importColumns = `id, user_id, file_name, bytes, state, counts, error, created_at, updated_at, finished_at, host, spool, after`

func scanImport(row pgx.Row) (ImportRow, error) {
	var r ImportRow
	var counts, after []byte
	if err := row.Scan(&r.ID, &r.UserID, &r.File, &r.Bytes, &r.State, &counts, &r.Error, &r.Created, &r.Updated, &r.Finished, &r.Host, &r.Spool, &after); err != nil {
		return r, err
	}
	r.Counts, r.After = counts, after
	r.Created, r.Updated = r.Created.UTC(), r.Updated.UTC()
	if r.Finished != nil {
		f := r.Finished.UTC()
		r.Finished = &f
	}
	return r, nil
}

// Import is user's import id; a topk.ErrNotFound naming "id" if user has
// no import of that id.
func (s *Store) Import(ctx context.Context, user, id string) (ImportRow, error) {
	r, err := scanImport(s.pool.QueryRow(ctx, `SELECT `+importColumns+` FROM imports WHERE id = $1 AND user_id = $2`, id, user))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, topk.NotFound("id", fmt.Sprintf("user %q has no import %q", user, id))
	}
	return r, err
}

// RunningImports lists host's running imports, oldest first.
func (s *Store) RunningImports(ctx context.Context, host string) ([]ImportRow, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+importColumns+` FROM imports WHERE host = $1 AND state = 'running' ORDER BY created_at`, host)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ImportRow
	for rows.Next() {
		r, err := scanImport(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
