package uploads

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/topk-charts/topk/imports"
	"github.com/topk-charts/topk/imports/send"
	"github.com/topk-charts/topk/listen"
)

// States of an import.
const (
	StateRunning = "running"
	StateDone    = "done"
	StateFailed  = "failed"
)

// Status is an import as GET /v1/users/{user}/imports/{id} shows it.
type Status struct {
	ID       string     `json:"id"`
	UserID   string     `json:"user_id"`
	File     string     `json:"file"`
	Bytes    int64      `json:"bytes"`
	State    string     `json:"state"`
	Created  time.Time  `json:"created_at"`
	Updated  time.Time  `json:"updated_at"`
	Finished *time.Time `json:"finished_at,omitempty"`
	Counts   Counts     `json:"counts"`
	// Error says why a failed import stopped, or why a done one could not
	// read a file to its end.
	Error string `json:"error,omitempty"`
}

// Counts is an import's report so far.
type Counts struct {
	// Progress of the read: files of the archive, files read to their end,
	// the file being read and its bytes read of its size.
	Files      int    `json:"files"`
	FilesDone  int    `json:"files_done"`
	Current    string `json:"current_file,omitempty"`
	BytesRead  int64  `json:"current_file_bytes_read"`
	BytesTotal int64  `json:"current_file_bytes"`
	// Read = Accepted + Skipped + Refused, in this run of the import
	// (records before a resume's checkpoint are in Resumed).
	Resumed  int `json:"resumed,omitempty"`
	Read     int `json:"read"`
	Accepted int `json:"accepted"`
	Skipped  int `json:"skipped"`
	Refused  int `json:"refused"`
	// Sent: listens Kafka acknowledged; DeadLetters: refused records
	// written to the dead-letter topic.
	Sent        int `json:"sent"`
	DeadLetters int `json:"dead_letters"`
	// Per reason, and per file (with examples of refusals).
	SkippedBy map[imports.Reason]int `json:"skipped_by_reason,omitempty"`
	RefusedBy map[imports.Reason]int `json:"refused_by_reason,omitempty"`
	PerFile   []*imports.FileReport  `json:"per_file,omitempty"`
}

// Unfinished is a running import of this host, to resume.
type Unfinished struct {
	Status
	Spool string
	After *imports.Position
}

// Store keeps imports (store/postgres implements it).
type Store interface {
	// InsertImport records a new running import taken by host, its upload
	// in spool.
	InsertImport(ctx context.Context, s Status, host, spool string) error
	// UpdateImport writes s's state, counts, error and finish time, and
	// the checkpoint after (nil: unchanged).
	UpdateImport(ctx context.Context, s Status, after *imports.Position) error
	// Import is user's import id; a topk.ErrNotFound naming "id" if none.
	Import(ctx context.Context, user, id string) (Status, error)
	// UnfinishedImports lists host's running imports.
	UnfinishedImports(ctx context.Context, host string) ([]Unfinished, error)
}

// Config of a Runner.
type Config struct {
	Store    Store
	Producer send.Producer
	Topics   listen.Topics
	// Limits are the contract's (TOPK_MAX_NAME_CHARS).
	Limits listen.Limits
	// Dir holds the uploads while they are imported.
	Dir string
	// Host names this api copy (its host name and Dir): it resumes only
	// its own imports, whose spool files it has.
	Host string
	// Parallel is how many imports run at once (others wait); 0: 1.
	Parallel int
	// Batch is send.Config.Batch (0: send.DefaultBatch).
	Batch int
	// CheckpointEvery is how often a running import writes its counts
	// and checkpoint (after an acknowledged batch); 0: every second.
	CheckpointEvery time.Duration
	Log             *slog.Logger
}

// Runner runs uploaded imports in the background, one status row each.
type Runner struct {
	cfg    Config
	sem    chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Runner; Close stops its imports (they resume when a
// Runner with the same Host and Dir calls Resume).
func New(cfg Config) (*Runner, error) {
	if cfg.Parallel <= 0 {
		cfg.Parallel = 1
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = time.Second
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("imports folder: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runner{cfg: cfg, sem: make(chan struct{}, cfg.Parallel), ctx: ctx, cancel: cancel}, nil
}

// Dir is where uploads are spooled.
func (r *Runner) Dir() string { return r.cfg.Dir }

// Check reads the upload at path far enough to tell it can be imported:
// a zip's central directory against the limits (a zip bomb is refused
// before anything is inflated), and the first record of a history file.
// Its error is imports.Read's: a *imports.LimitError, a
// *imports.FormatError, or another (a damaged zip).
func (r *Runner) Check(ctx context.Context, user, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	errFirst := errors.New("first record")
	found := func() error { return errFirst }
	opts := imports.Options{User: user, Limits: r.cfg.Limits, MinPlayed: -1, MaxExamples: -1,
		Refused: func(imports.Refusal) error { return found() }}
	_, err = imports.Read(ctx, f, fi.Size(), name, opts, func(imports.Record) error { return found() })
	var fe *imports.FileError
	switch {
	case errors.Is(err, errFirst), err == nil:
		return nil
	case errors.As(err, &fe):
		return nil // a damaged file among good ones: the import reports it
	}
	return err
}

// Start records and starts the import of the upload at path (moved into
// the Runner's folder; size bytes, called name) for user.
func (r *Runner) Start(ctx context.Context, user, path, name string, size int64) (Status, error) {
	id := newID()
	spool := filepath.Join(r.cfg.Dir, id+".upload")
	if err := os.Rename(path, spool); err != nil {
		return Status{}, err
	}
	now := time.Now().UTC()
	s := Status{ID: id, UserID: user, File: name, Bytes: size, State: StateRunning, Created: now, Updated: now}
	if err := r.cfg.Store.InsertImport(ctx, s, r.cfg.Host, spool); err != nil {
		os.Remove(spool)
		return Status{}, err
	}
	r.run(s, spool, nil)
	return s, nil
}

// Get is user's import id.
func (r *Runner) Get(ctx context.Context, user, id string) (Status, error) {
	return r.cfg.Store.Import(ctx, user, id)
}

// Resume restarts this host's running imports from their checkpoints;
// one whose upload is gone is marked failed.
func (r *Runner) Resume(ctx context.Context) error {
	list, err := r.cfg.Store.UnfinishedImports(ctx, r.cfg.Host)
	if err != nil {
		return err
	}
	for _, u := range list {
		if _, err := os.Stat(u.Spool); err != nil {
			u.State, u.Error = StateFailed, "the upload was lost when the api stopped: upload the file again (nothing is counted twice)"
			fin := time.Now().UTC()
			u.Finished, u.Updated = &fin, fin
			if err := r.cfg.Store.UpdateImport(ctx, u.Status, nil); err != nil {
				return err
			}
			continue
		}
		r.cfg.Log.Info("import resumed", "import", u.ID, "user", u.UserID, "after", u.After)
		r.run(u.Status, u.Spool, u.After)
	}
	return nil
}

// Close stops the running imports, leaving their rows running with their
// checkpoints, and waits for them.
func (r *Runner) Close() {
	r.cancel()
	r.wg.Wait()
}

func (r *Runner) run(s Status, spool string, after *imports.Position) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		select {
		case r.sem <- struct{}{}:
			defer func() { <-r.sem }()
		case <-r.ctx.Done():
			return
		}
		r.importFile(s, spool, after)
	}()
}

func (r *Runner) importFile(s Status, spool string, after *imports.Position) {
	ctx := r.ctx
	log := r.cfg.Log.With("import", s.ID, "user", s.UserID)
	f, err := os.Open(spool)
	if err != nil {
		r.finish(s, StateFailed, err.Error(), spool)
		return
	}
	defer f.Close()
	var last time.Time
	cfg := send.Config{
		Options:  imports.Options{User: s.UserID, Limits: r.cfg.Limits, After: after},
		Topics:   r.cfg.Topics,
		Producer: r.cfg.Producer,
		Name:     s.ID,
		Batch:    r.cfg.Batch,
		Checkpoint: func(p imports.Position) error {
			if time.Since(last) < r.cfg.CheckpointEvery {
				return nil
			}
			last = time.Now()
			s.Updated = last.UTC()
			return r.cfg.Store.UpdateImport(ctx, s, &p)
		},
		Progress: func(st send.Status) { s.Counts = counts(st.Totals, st) },
	}
	rep, st, err := send.Run(ctx, f, s.Bytes, s.File, cfg)
	s.Counts = counts(rep.Totals(), st)
	s.Counts.PerFile = rep.Files
	var state, errText string
	switch {
	case ctx.Err() != nil:
		// Closing: the row stays running, Resume goes on from the checkpoint.
		log.Info("import interrupted; resumes when the api starts again", "sent", st.Sent)
		return
	case send.Complete(err):
		s.Counts.FilesDone, s.Counts.Current, s.Counts.BytesRead, s.Counts.BytesTotal = s.Counts.Files, "", 0, 0
		state = StateDone
		if err != nil { // damaged files: named, the rest imported
			errText = err.Error()
		}
	default:
		state, errText = StateFailed, err.Error()+": upload the file again (nothing is counted twice)"
	}
	r.finish(s, state, errText, spool)
	log.Info("import ended", "state", state, "read", s.Counts.Read, "accepted", s.Counts.Accepted, "sent", s.Counts.Sent, "refused", s.Counts.Refused, "err", err)
}

func (r *Runner) finish(s Status, state, errText, spool string) {
	now := time.Now().UTC()
	s.State, s.Error, s.Updated, s.Finished = state, errText, now, &now
	// The row must say how it ended even when the request that started
	// it is long gone.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.cfg.Store.UpdateImport(ctx, s, nil); err != nil {
		r.cfg.Log.Error("import status not written", "import", s.ID, "err", err)
		return // the row stays running: Resume imports it again (harmless)
	}
	os.Remove(spool)
}

func counts(t imports.FileReport, st send.Status) Counts {
	c := Counts{
		Files: st.Files, FilesDone: st.FilesDone, Current: st.File, BytesRead: st.Bytes, BytesTotal: st.FileBytes,
		Resumed: t.Resumed, Read: t.Read, Accepted: t.Accepted, Sent: st.Sent, DeadLetters: st.DeadLetters,
		SkippedBy: t.Skipped, RefusedBy: t.Refused,
	}
	for _, n := range t.Skipped {
		c.Skipped += n
	}
	for _, n := range t.Refused {
		c.Refused += n
	}
	return c
}

// newID is a random import id: 16 hex digits.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	return hex.EncodeToString(b[:])
}
