package crawler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/crawler/provider"
	"github.com/topk-charts/topk/listen"
)

func TestTaskIDUniquePerUserAndSlot(t *testing.T) {
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	if got := TaskID("alice", at); got != "crawl:alice:1795856400" {
		t.Fatalf("task id %q", got)
	}
	if TaskID("alice", at) == TaskID("alice", at.Add(time.Second)) || TaskID("alice", at) == TaskID("bob", at) {
		t.Fatal("task ids collide")
	}
	if Queue("") != "crawl" || Queue("t1") != "t1.crawl" {
		t.Fatal("queue names")
	}
	task, opts := newTask("alice", at, "crawl", 3, time.Minute)
	p, err := parsePayload(task.Payload())
	if err != nil || p.User != "alice" || p.Slot != at.Unix() || len(opts) != 5 {
		t.Fatalf("%+v %v", p, err)
	}
	if _, err := parsePayload([]byte(`{"user":""}`)); err == nil {
		t.Fatal("empty payload accepted")
	}
}

func TestRetryDelayExponentialCappedWithRetryAfter(t *testing.T) {
	f := RetryDelay(10*time.Second, time.Hour)
	for n, want := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 4: 80 * time.Second, 30: time.Hour} {
		d := f(n, errors.New("x"), nil)
		if d < want*8/10 || d > want*12/10 {
			t.Errorf("retry %d: %v, want %v ±20%%", n, d, want)
		}
	}
	d := f(1, &provider.RetryAfterError{After: 5 * time.Minute, Err: errors.New("429")}, nil)
	if d != 5*time.Minute {
		t.Errorf("Retry-After ignored: %v", d)
	}
}

func testControl(t *testing.T) *Control {
	t.Helper()
	c, err := NewControl(Config{
		Providers: map[string]ProviderEntry{"simulated": {Interval: time.Minute}, "spotify": {Interval: 30 * time.Minute}, "lastfm": {Interval: 24 * time.Hour}},
		Now:       func() time.Time { return time.Date(2026, 11, 28, 9, 0, 0, 500, time.UTC) },
	}, nil, nil, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRegistrationValidation(t *testing.T) {
	c := testControl(t)
	u, err := c.validate(Registration{UserID: "alice", Provider: "lastfm", ExternalID: "rj", Interval: "12h"})
	if err != nil || u.ExternalID != "rj" || u.Interval != 12*time.Hour || !u.NextRunAt.Equal(time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)) {
		t.Fatalf("%+v %v", u, err)
	}
	u, err = c.validate(Registration{UserID: "bob", Provider: "simulated"})
	if err != nil || u.ExternalID != "bob" || u.Interval != time.Minute {
		t.Fatalf("defaults: %+v %v", u, err)
	}
	for field, r := range map[string]Registration{
		"user_id":       {UserID: "a|b", Provider: "lastfm"},
		"provider":      {UserID: "a", Provider: "myspace"},
		"refresh_token": {UserID: "a", Provider: "spotify"},
		"access_token":  {UserID: "a", Provider: "lastfm", AccessToken: "x"},
		"interval":      {UserID: "a", Provider: "lastfm", Interval: "soon"},
		"external_id":   {UserID: "a", Provider: "lastfm", ExternalID: strings.Repeat("x", 300)},
	} {
		_, err := c.validate(r)
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Field != field {
			t.Errorf("%s: %v", field, err)
		}
	}
	for _, id := range []string{"", strings.Repeat("x", 129), "a/b", "tab\there"} {
		if _, err := c.validate(Registration{UserID: id, Provider: "lastfm"}); err == nil {
			t.Errorf("user id %q accepted", id)
		}
	}
}

func TestListensFollowTheContract(t *testing.T) {
	w := &Worker{cfg: Config{Now: time.Now}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	w.m, _ = NewMetrics(nil)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	ls := w.listens("alice", "lastfm", []provider.Play{
		{PlayedAt: at, Artist: "Radiohead", Track: "Reckoner", Album: "In Rainbows", TrackID: "t", DurationMS: 290000},
		{PlayedAt: at, Artist: "", Track: "No artist"},
	})
	if len(ls) != 2 || ls[0].UserID != "alice" || ls[0].Source != "lastfm" || ls[0].ArtistName != "Radiohead" || ls[0].DurationMS != 290000 {
		t.Fatalf("%+v", ls)
	}
	if err := ls[0].Validate(time.Now()); err != nil {
		t.Fatal(err)
	}
	// The invalid play is still published (ingest dead-letters it) and counted.
	if ls[1].TrackName != "No artist" {
		t.Fatalf("%+v", ls[1])
	}
}

// fakeRuns is a RunStore whose lease is lost after `held` pages.
type fakeRuns struct {
	claimOK  bool
	held     int
	advances int
	finishes []Outcome
}

func (f *fakeRuns) Claim(_ context.Context, user string, slot time.Time, taskID string, _ int, _ time.Duration) (Claim, bool, error) {
	return Claim{Schedule: Schedule{UserID: user, Provider: "simulated", ExternalID: user, NextRunAt: slot, Interval: Duration(time.Hour)}, RunID: 7}, f.claimOK, nil
}

func (f *fakeRuns) Advance(context.Context, string, string, int64, Progress) (bool, error) {
	f.advances++
	return f.advances <= f.held, nil
}

func (f *fakeRuns) SaveTokens(context.Context, string, provider.Tokens) error { return nil }

func (f *fakeRuns) Finish(_ context.Context, _, _ string, _ int64, o Outcome) (bool, error) {
	f.finishes = append(f.finishes, o)
	return true, nil
}

func (f *fakeRuns) PruneRuns(context.Context, string, int) error { return nil }

type countingPublisher struct{ listens int }

func (p *countingPublisher) Publish(_ context.Context, batch []listen.Listen) error {
	p.listens += len(batch)
	return nil
}

// pages emits n pages of one play each and counts its calls.
type pages struct{ n, calls int }

func (p *pages) Crawl(ctx context.Context, _ provider.Account, _ int64, emit func(context.Context, provider.Page) error) (provider.Result, error) {
	p.calls++
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	for i := range p.n {
		t := at.Add(time.Duration(i) * time.Minute)
		if err := emit(ctx, provider.Page{Plays: []provider.Play{{PlayedAt: t, Artist: "a", Track: "t"}}, Cursor: t.Unix()}); err != nil {
			return provider.Result{}, err
		}
	}
	return provider.Result{}, nil
}

func testWorker(t *testing.T, runs RunStore, pub Publisher, p provider.Provider) *Worker {
	t.Helper()
	w, err := NewWorker(Config{Providers: map[string]ProviderEntry{"simulated": {Provider: p, Interval: time.Hour}}},
		runs, pub, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// Through the RunStore port: a lease lost mid-crawl (Advance not held)
// stops the crawl after the page in flight, quietly, with no outcome
// recorded; a stale task never reaches the provider.
func TestWorkerStopsWhenTheLeaseIsLost(t *testing.T) {
	task, _ := newTask("alice", time.Now(), "crawl", 3, time.Minute)
	runs, pub, prov := &fakeRuns{claimOK: true, held: 1}, &countingPublisher{}, &pages{n: 3}
	if err := testWorker(t, runs, pub, prov).ProcessTask(context.Background(), task); err != nil {
		t.Fatalf("ProcessTask = %v, want nil for a lost lease", err)
	}
	if runs.advances != 2 || pub.listens != 2 || len(runs.finishes) != 0 {
		t.Fatalf("%d advances, %d listens, finishes %+v: want the crawl to stop at the second page", runs.advances, pub.listens, runs.finishes)
	}
	runs, prov = &fakeRuns{}, &pages{n: 3}
	if err := testWorker(t, runs, pub, prov).ProcessTask(context.Background(), task); err != nil || prov.calls != 0 {
		t.Fatalf("stale task: %v, %d crawls", err, prov.calls)
	}
}

// The control plane's errors are the domain's: the api and cmd can decide
// with either.
func TestErrorsWrapTheDomainErrors(t *testing.T) {
	err := fmt.Errorf("get alice: %w", ErrNotFound)
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, topk.ErrNotFound) || ErrNotFound.Error() != "no such user" {
		t.Fatalf("%v", err)
	}
	if errors.Is(ErrExists, topk.ErrNotFound) || errors.Is(ErrBusy, topk.ErrNotFound) {
		t.Fatal("ErrExists or ErrBusy is a not-found")
	}
	if err := invalidf("user_id", "bad"); !errors.Is(err, topk.ErrInvalid) || err.Error() != "user_id: bad" {
		t.Fatalf("%v", err)
	}
}

// A task's payload is the user and the slot, nothing else: tokens are
// read from PostgreSQL when the crawl claims its user, so Redis and
// asynqmon never hold one.
func TestTaskPayloadIsUserAndSlotOnly(t *testing.T) {
	task, _ := newTask("alice", time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC), "crawl", 3, time.Minute)
	if got := string(task.Payload()); got != `{"user":"alice","slot":1795856400}` {
		t.Fatalf("payload %s", got)
	}
}

// SyncBuffer is syncBuffer (outage_test.go) for the integration tests,
// which are package crawler_test.
type SyncBuffer = syncBuffer

// keyed fails the way a provider with a key in its URLs fails on the wire.
type keyed struct{}

func (keyed) Secrets() []string { return []string{"key-0123456789abcdef"} }

func (keyed) Crawl(context.Context, provider.Account, int64, func(context.Context, provider.Page) error) (provider.Result, error) {
	return provider.Result{}, errors.New(`Get "http://127.0.0.1:1/2.0/?api_key=key-0123456789abcdef&user=rj": connection refused; key key-0123456789abcdef`)
}

// The worker wraps every provider in provider.Redacting: the error it
// returns to Asynq, the outcome it records and its log line hold no key;
// the caller's provider map is left as it was.
func TestWorkerRedactsProviderErrors(t *testing.T) {
	var logs strings.Builder
	provs := map[string]ProviderEntry{"simulated": {Provider: keyed{}, Interval: time.Hour}}
	runs := &fakeRuns{claimOK: true}
	w, err := NewWorker(Config{Providers: provs}, runs, &countingPublisher{}, nil, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := provs["simulated"].Provider.(keyed); !ok {
		t.Fatal("NewWorker changed the caller's map")
	}
	task, _ := newTask("alice", time.Now(), "crawl", 3, time.Minute)
	err = w.ProcessTask(context.Background(), task)
	if err == nil || len(runs.finishes) != 1 {
		t.Fatalf("ProcessTask = %v, finishes %+v", err, runs.finishes)
	}
	want := `Get "http://127.0.0.1:1/2.0/?api_key=REDACTED&user=rj": connection refused; key REDACTED`
	for what, text := range map[string]string{"returned error": err.Error(), "recorded error": runs.finishes[0].Err, "log": logs.String()} {
		if strings.Contains(text, "0123456789abcdef") || !strings.Contains(strings.ReplaceAll(text, `\"`, `"`), want) {
			t.Errorf("%s: %s", what, text)
		}
	}
}
