package uploads_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/imports"
	"github.com/topk-charts/topk/imports/uploads"
	"github.com/topk-charts/topk/internal/importfixture"
	"github.com/topk-charts/topk/listen"
)

// store is an in-memory uploads.Store that keeps checkpoints and spools.
type store struct {
	mu    sync.Mutex
	rows  map[string]uploads.Status
	after map[string]*imports.Position
	spool map[string]string
	host  map[string]string
}

func newStore() *store {
	return &store{rows: map[string]uploads.Status{}, after: map[string]*imports.Position{}, spool: map[string]string{}, host: map[string]string{}}
}

func (s *store) InsertImport(_ context.Context, st uploads.Status, host, spool string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows[st.ID], s.spool[st.ID], s.host[st.ID] = st, spool, host
	return nil
}

func (s *store) UpdateImport(_ context.Context, st uploads.Status, after *imports.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows[st.ID] = st
	if after != nil {
		p := *after
		s.after[st.ID] = &p
	}
	return nil
}

func (s *store) Import(_ context.Context, user, id string) (uploads.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.rows[id]
	if !ok || st.UserID != user {
		return st, topk.NotFound("id", "none")
	}
	return st, nil
}

func (s *store) UnfinishedImports(_ context.Context, host string) ([]uploads.Unfinished, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uploads.Unfinished
	for id, st := range s.rows {
		if st.State == uploads.StateRunning && s.host[id] == host {
			out = append(out, uploads.Unfinished{Status: st, Spool: s.spool[id], After: s.after[id]})
		}
	}
	return out, nil
}

// producer acknowledges sends; after stopAfter sends (0: never) it blocks
// until its context ends, as a send to a Kafka that went away does.
type producer struct {
	mu        sync.Mutex
	msgs      []*sarama.ProducerMessage
	sends     int
	stopAfter int
	stopped   chan struct{}
}

func (p *producer) Send(ctx context.Context, msgs []*sarama.ProducerMessage) error {
	p.mu.Lock()
	p.sends++
	if p.stopAfter > 0 && p.sends > p.stopAfter {
		p.mu.Unlock()
		close(p.stopped)
		<-ctx.Done()
		return ctx.Err()
	}
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, msgs...)
	return nil
}

func (p *producer) values() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out [][]byte
	for _, m := range p.msgs {
		v, _ := m.Value.Encode()
		out = append(out, v)
	}
	return out
}

func newRunner(t *testing.T, st uploads.Store, p uploads.Config, dir string) *uploads.Runner {
	t.Helper()
	p.Store, p.Dir, p.Host = st, dir, "host-a"
	p.Topics, p.Batch, p.CheckpointEvery = listen.NewTopics("t"), 3, time.Nanosecond
	r, err := uploads.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func spool(t *testing.T, dir string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, "incoming.part")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func waitState(t *testing.T, r *uploads.Runner, user, id string) uploads.Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := r.Get(context.Background(), user, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != uploads.StateRunning {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("still running: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An api that stops mid-import leaves the row running with its checkpoint;
// started again on the same host and folder, it resumes after the
// checkpoint: both runs together sent every record, and the second sent
// nothing the first had checkpointed.
func TestResumeAfterAStop(t *testing.T) {
	data, _ := importfixture.Spotify(false)
	dir := t.TempDir()
	all := &producer{}
	ref := newRunner(t, newStore(), uploads.Config{Producer: all}, t.TempDir())
	refDir := ref.Dir()
	st, err := ref.Start(context.Background(), "alice", spool(t, refDir, data), "my_spotify_data.zip", int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if got := waitState(t, ref, "alice", st.ID); got.State != uploads.StateDone {
		t.Fatalf("reference import: %+v", got)
	}
	ref.Close()

	db := newStore()
	first := &producer{stopAfter: 3, stopped: make(chan struct{})}
	r1 := newRunner(t, db, uploads.Config{Producer: first}, dir)
	st, err = r1.Start(context.Background(), "alice", spool(t, dir, data), "my_spotify_data.zip", int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	<-first.stopped
	r1.Close() // the api stops: the send in flight is abandoned
	row, _ := db.Import(context.Background(), "alice", st.ID)
	if row.State != uploads.StateRunning || db.after[st.ID] == nil {
		t.Fatalf("after the stop: %+v, checkpoint %v", row, db.after[st.ID])
	}
	if _, err := os.Stat(db.spool[st.ID]); err != nil {
		t.Fatalf("the upload is gone: %v", err)
	}

	second := &producer{}
	r2 := newRunner(t, db, uploads.Config{Producer: second}, dir)
	defer r2.Close()
	if err := r2.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	done := waitState(t, r2, "alice", st.ID)
	if done.State != uploads.StateDone || done.Counts.Resumed == 0 {
		t.Fatalf("resumed import: %+v", done)
	}
	got := append(first.values(), second.values()...)
	want := all.values()
	if len(got) != len(want) {
		t.Fatalf("%d + %d records sent, want %d", len(first.values()), len(second.values()), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("record %d: %s, want %s", i, got[i], want[i])
		}
	}
	// The row says done before the spool file goes (finish: a crash in
	// between must leave an import that resumes, not one whose upload
	// is gone), so the removal may follow the state the test saw.
	var statErr error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, statErr = os.Stat(db.spool[st.ID]); os.IsNotExist(statErr) || time.Now().After(deadline) {
			break
		}
	}
	if !os.IsNotExist(statErr) {
		t.Errorf("spool file left 5 s after the import: %v", statErr)
	}
}

// A running import whose upload is gone (another disk, a wiped folder) is
// marked failed with what to do.
func TestResumeWithoutTheUpload(t *testing.T) {
	db := newStore()
	_ = db.InsertImport(context.Background(), uploads.Status{ID: "x", UserID: "alice", State: uploads.StateRunning}, "host-a", "/nonexistent/x.upload")
	r := newRunner(t, db, uploads.Config{Producer: &producer{}}, t.TempDir())
	defer r.Close()
	if err := r.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, _ := db.Import(context.Background(), "alice", "x")
	if st.State != uploads.StateFailed || st.Error == "" || st.Finished == nil {
		t.Errorf("%+v", st)
	}
}
