package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/topk-charts/topk/api"
	"github.com/topk-charts/topk/imports"
	"github.com/topk-charts/topk/imports/uploads"
	"github.com/topk-charts/topk/listen"
	"github.com/topk-charts/topk/store/postgres"
)

// mountImports adds the history upload routes: uploads spooled in
// TOPK_IMPORT_DIR, imported by an uploads.Runner through pub, their status
// in cp's PostgreSQL. The imports this host left running resume in the
// background. The returned func stops the running imports (they resume
// at the next start).
func mountImports(ctx context.Context, env *Env, p *apiParts, cp *controlPlane, pub *lazyPublisher) (func(), error) {
	c := env.Config
	dir, err := filepath.Abs(c.API.ImportDir)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	log := logWith(env.Log, "imports")
	r, err := uploads.New(uploads.Config{
		Store: importStore{cp.store}, Producer: pub, Topics: listen.NewTopics(c.Namespace),
		Limits: listen.Limits{MaxNameChars: c.Pipeline.MaxNameChars},
		Dir:    dir, Host: host + ":" + dir, Log: log,
	})
	if err != nil {
		return nil, err
	}
	p.srv.MountImports(api.ImportsConfig{
		Importer: r, Tokens: cp.store, AdminToken: c.API.AdminToken,
		MaxBytes: int64(c.API.ImportMaxBytes), UploadTimeout: c.API.ImportUploadTimeout,
	})
	go func() {
		if err := r.Resume(ctx); err != nil && ctx.Err() == nil {
			log.Error("imports left running not resumed", "err", err)
		}
	}()
	return r.Close, nil
}

// importStore is uploads.Store on PostgreSQL's imports table: the status
// and checkpoint as JSON in store/postgres's rows (which import no import
// code, so that the store stays a leaf of the tests' imports).
type importStore struct{ pg *postgres.Store }

var _ uploads.Store = importStore{}

func (s importStore) InsertImport(ctx context.Context, st uploads.Status, host, spool string) error {
	r, err := importRow(st, nil)
	if err != nil {
		return err
	}
	r.Host, r.Spool = host, spool
	return s.pg.InsertImport(ctx, r)
}

func (s importStore) UpdateImport(ctx context.Context, st uploads.Status, after *imports.Position) error {
	r, err := importRow(st, after)
	if err != nil {
		return err
	}
	return s.pg.UpdateImport(ctx, r)
}

func (s importStore) Import(ctx context.Context, user, id string) (uploads.Status, error) {
	r, err := s.pg.Import(ctx, user, id)
	if err != nil {
		return uploads.Status{}, err
	}
	return importStatus(r)
}

func (s importStore) UnfinishedImports(ctx context.Context, host string) ([]uploads.Unfinished, error) {
	rows, err := s.pg.RunningImports(ctx, host)
	if err != nil {
		return nil, err
	}
	var out []uploads.Unfinished
	for _, r := range rows {
		st, err := importStatus(r)
		if err != nil {
			return nil, err
		}
		u := uploads.Unfinished{Status: st, Spool: r.Spool}
		if len(r.After) > 0 {
			u.After = &imports.Position{}
			if err := json.Unmarshal(r.After, u.After); err != nil {
				return nil, fmt.Errorf("import %s: checkpoint: %w", r.ID, err)
			}
		}
		out = append(out, u)
	}
	return out, nil
}

func importRow(st uploads.Status, after *imports.Position) (postgres.ImportRow, error) {
	counts, err := json.Marshal(st.Counts)
	if err != nil {
		return postgres.ImportRow{}, err
	}
	r := postgres.ImportRow{ID: st.ID, UserID: st.UserID, File: st.File, Bytes: st.Bytes, State: st.State, Counts: counts,
		Error: st.Error, Created: st.Created, Updated: st.Updated, Finished: st.Finished}
	if after != nil {
		if r.After, err = json.Marshal(after); err != nil {
			return r, err
		}
	}
	return r, nil
}

func importStatus(r postgres.ImportRow) (uploads.Status, error) {
	st := uploads.Status{ID: r.ID, UserID: r.UserID, File: r.File, Bytes: r.Bytes, State: r.State, Error: r.Error,
		Created: r.Created, Updated: r.Updated, Finished: r.Finished}
	if err := json.Unmarshal(r.Counts, &st.Counts); err != nil {
		return st, fmt.Errorf("import %s: counts: %w", r.ID, err)
	}
	return st, nil
}
