// The load and the measurement: users with tokens, submissions at their
// due times (open loop), and the poller that sees them counted.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/topk-charts/topk/bench/benchkit"
	"github.com/topk-charts/topk/store/postgres"
)

// probeUser submits the listen that shows the pipeline is consuming.
const probeUser = "lb-probe"

// user is a submitting user and what the measurement knows of it. The
// fields below token are the tracker's, under its mutex.
type user struct {
	name, token string

	subs       []*submission // in due order
	next       int           // subs[:next] are counted or refused
	open       int           // submissions expected to be counted, not counted yet
	counted    int64         // the last count read
	listenedAt int64         // the next submission's listened_at (counts down: each is the user's own)
	armed      bool          // polled every poll (since a submission was answered 200, until none is open)
	pollAt     time.Time     // due time of the next poll, when armed
	lastPoll   time.Time     // start of the last poll answered
	polling    bool
}

// answeredOpen reports whether a submission of u answered 200 is not
// counted yet (under the tracker's mutex).
func (u *user) answeredOpen() bool {
	for _, s := range u.subs[u.next:] {
		if !s.answered.IsZero() && !s.counted && !s.refused {
			return true
		}
	}
	return false
}

// submission is one POST.
type submission struct {
	due      time.Time
	answered time.Time // when its 200 came
	refused  bool      // answered other than 200
	counted  bool
}

// userNames are lb-user-0 … lb-user-(n-1).
func userNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = "lb-user-" + strconv.Itoa(i)
	}
	return names
}

// createUsers gives each name a token.
func createUsers(ctx context.Context, store *postgres.Store, names []string) ([]*user, error) {
	users := make([]*user, len(names))
	for i, name := range names {
		tok, _, err := store.CreateToken(ctx, name)
		if err != nil {
			return nil, err
		}
		users[i] = &user{name: name, token: tok}
	}
	return users, nil
}

// clients are the HTTP clients: the submitters' and the poller's, each
// with its own keep-alive connections.
type clients struct {
	submit, poll *http.Client
}

func newClients() *clients {
	tr := func(conns int) *http.Transport {
		return &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute}
	}
	return &clients{
		submit: &http.Client{Transport: tr(512), Timeout: 15 * time.Second},
		poll:   &http.Client{Transport: tr(64), Timeout: 5 * time.Second},
	}
}

func (c *clients) close() {
	c.submit.CloseIdleConnections()
	c.poll.CloseIdleConnections()
}

// listenBody is a single submission of one listen.
func listenBody(listenedAt int64, track int) []byte {
	artist := track % 700
	return []byte(`{"listen_type":"single","payload":[{"listened_at":` + strconv.FormatInt(listenedAt, 10) +
		`,"track_metadata":{"artist_name":"Artist ` + strconv.Itoa(artist) + `","track_name":"Track ` + strconv.Itoa(track) +
		` by ` + strconv.Itoa(artist) + `","release_name":"Album ` + strconv.Itoa(track/12) + `"}}]}`)
}

// post submits body as u and returns the answer's status (0: no answer).
func post(ctx context.Context, c *http.Client, base string, u *user, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/1/submit-listens", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Token "+u.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return resp.StatusCode, nil
}

// errNoUser is a 404 of listen-count: the user has no listens counted yet.
var errNoUser = errors.New("not found")

// listenCount reads GET /1/user/{user}/listen-count.
func listenCount(ctx context.Context, c *http.Client, base, name string) (int64, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/1/user/"+name+"/listen-count", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, resp.StatusCode, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return 0, resp.StatusCode, errNoUser
	default:
		return 0, resp.StatusCode, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var a struct {
		Payload struct {
			Count int64 `json:"count"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return 0, resp.StatusCode, fmt.Errorf("listen-count answer %q: %w", b, err)
	}
	return a.Payload.Count, resp.StatusCode, nil
}

// waitFirstCount submits one listen as u and waits until its listen-count
// shows it: ingest and the aggregator have their partitions, the view
// follows the table.
func waitFirstCount(ctx context.Context, c *clients, base string, u *user, procs map[string]*benchkit.Process, dir string) error {
	if _, err := post(ctx, c.submit, base, u, listenBody(time.Now().Unix()-1, 1)); err != nil {
		return fmt.Errorf("the probe's submission: %w", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		n, _, err := listenCount(ctx, c.poll, base, u.name)
		if err == nil && n > 0 {
			return nil
		}
		if err != nil && !errors.Is(err, errNoUser) {
			fmt.Fprintln(os.Stderr, "bench-lb: probe:", err)
		}
		for name, p := range procs {
			if p.Exited() {
				return fmt.Errorf("%s ended (%v): see its log %s", name, p.ExitError(), filepath.Join(dir, name+".log"))
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	var logs strings.Builder
	for _, name := range pipeline {
		b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
		fmt.Fprintf(&logs, "\n%s:\n%s", name, b)
	}
	return fmt.Errorf("the probe's listen was not counted in 2 minutes%s", logs.String())
}

// result is what a run measured.
type result struct {
	n           int           // submissions sent
	achieved    float64       // submissions per second sent
	sendTime    time.Duration // first due → last sent
	measureTime time.Duration // first due → the end of the drain
	late        []time.Duration
	post        []time.Duration // due → answer, 200s only
	codes       map[int]int     // answers by status; 0: none (timeout, refused connection)
	firstErr    map[int]string  // an answer's body or error, by status
	chart       []time.Duration // due → the listen-count answer that counted it
	resolution  []time.Duration // per counted submission: that answer − max(its 200, the previous poll's start)
	uncounted   int             // answered 200, never counted
	extra       int             // counted beyond the submissions answered 200 or unanswered
	polls       int
	pollLat     []time.Duration
	pollErrs    map[string]int
	cpu0, cpu1  cpuSample // at the start and the end of the measured run
}

func (r *result) notOK() int {
	bad := 0
	for code, n := range r.codes {
		if code != http.StatusOK {
			bad += n
		}
	}
	return bad
}

func (r *result) codeList() string {
	codes := make([]int, 0, len(r.codes))
	for c := range r.codes {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		name := strconv.Itoa(c)
		if c == 0 {
			name = "no answer"
		}
		s := fmt.Sprintf("%s: %d", name, r.codes[c])
		if c != http.StatusOK {
			s += fmt.Sprintf(" (%s)", r.firstErr[c])
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func (r *result) pollErrors() string {
	if len(r.pollErrs) == 0 {
		return "no failed reads"
	}
	var parts []string
	for e, n := range r.pollErrs {
		parts = append(parts, fmt.Sprintf("%d× %s", n, e))
	}
	sort.Strings(parts)
	return "failed reads: " + strings.Join(parts, "; ")
}

// tracker holds the users' state and the figures while a run goes.
type tracker struct {
	mu    sync.Mutex
	users []*user
	poll  time.Duration
	r     result
}

// add registers submission due at due of u and returns its body.
func (t *tracker) add(u *user, due time.Time, track int) (*submission, []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := &submission{due: due}
	u.subs = append(u.subs, s)
	u.open++
	body := listenBody(u.listenedAt, track)
	u.listenedAt--
	return s, body
}

// answered records the POST's answer. A 200 arms the user's polls: the
// first one poll after the answer.
func (t *tracker) answered(u *user, s *submission, end time.Time, status int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.r.codes[status]++
	if status == http.StatusOK {
		t.r.post = append(t.r.post, end.Sub(s.due))
		s.answered = end
		if !u.armed && !s.counted {
			u.armed, u.pollAt = true, end.Add(t.poll)
		}
		return
	}
	if _, ok := t.r.firstErr[status]; !ok && err != nil {
		t.r.firstErr[status] = err.Error()
	}
	s.refused = true
	if !s.counted {
		u.open--
	}
}

// read records a poll of u that started at start and answered count at
// end: the user's submissions it counts for the first time get end.
func (t *tracker) read(u *user, start, end time.Time, count int64, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u.polling = false
	defer func() {
		u.pollAt = start.Add(t.poll)
		u.armed = u.answeredOpen()
	}()
	t.r.polls++
	t.r.pollLat = append(t.r.pollLat, end.Sub(start))
	prev := u.lastPoll
	u.lastPoll = start
	if err != nil && !errors.Is(err, errNoUser) {
		msg := err.Error()
		if len(msg) > 120 {
			msg = msg[:120] + "…"
		}
		t.r.pollErrs[msg]++
		return
	}
	if count <= u.counted {
		return
	}
	fresh := count - u.counted
	u.counted = count
	for fresh > 0 && u.next < len(u.subs) {
		s := u.subs[u.next]
		u.next++
		if s.refused {
			continue
		}
		s.counted = true
		u.open--
		fresh--
		t.r.chart = append(t.r.chart, end.Sub(s.due))
		from := s.answered // a listen is not counted before Kafka acknowledged it
		if from.IsZero() {
			from = s.due // counted before its answer came
		}
		if prev.After(from) {
			from = prev
		}
		t.r.resolution = append(t.r.resolution, end.Sub(from))
	}
	t.r.extra += int(fresh)
}

// open is the number of submissions still expected to be counted.
func (t *tracker) open() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, u := range t.users {
		n += u.open
	}
	return n
}

// poller reads the listen-count of every user with uncounted submissions
// once per t.poll, from workers goroutines, until ctx ends.
func (t *tracker) poller(ctx context.Context, c *http.Client, base string, workers int) *sync.WaitGroup {
	work := make(chan *user, len(t.users))
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range work {
				start := time.Now()
				n, _, err := listenCount(ctx, c, base, u.name)
				if ctx.Err() != nil {
					continue // the run is over: not a failed read
				}
				t.read(u, start, time.Now(), n, err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(work)
		tick := time.NewTicker(max(t.poll/20, time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				t.mu.Lock()
				for _, u := range t.users {
					if u.armed && !u.polling && !now.Before(u.pollAt) {
						u.polling = true
						work <- u // room for every user: never blocks
					}
				}
				t.mu.Unlock()
			}
		}
	}()
	return &wg
}

// newResult is an empty result.
func newResult() result {
	return result{codes: map[int]int{}, firstErr: map[int]string{}, pollErrs: map[string]int{}}
}

// send submits n listens at rate, user after user, each due at start +
// i/rate and sent in its own goroutine, and waits for their answers. It
// returns how late each was sent and the time from start to the last
// send.
func (t *tracker) send(ctx context.Context, c *http.Client, base string, n, rate int, rng *rand.Rand, progress bool) ([]time.Duration, time.Duration) {
	var bar *progressbar.ProgressBar
	if progress {
		bar = benchkit.Bar(int64(n), fmt.Sprintf("%d submissions/s", rate))
	}
	tracks := rand.NewZipf(rng, 1.1, 1, 20_000)
	var posts sync.WaitGroup
	late := make([]time.Duration, 0, n)
	start := time.Now().Add(100 * time.Millisecond)
	// Due times by the clock, not a ticker (a ticker drops ticks on a
	// busy machine).
	for i := range n {
		if ctx.Err() != nil {
			break // interrupted
		}
		due := start.Add(time.Duration(i) * time.Second / time.Duration(rate))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		u := t.users[i%len(t.users)]
		s, body := t.add(u, due, int(tracks.Uint64()))
		late = append(late, time.Since(due))
		posts.Add(1)
		go func() {
			defer posts.Done()
			status, err := post(ctx, c, base, u, body)
			t.answered(u, s, time.Now(), status, err)
		}()
		if bar != nil && i%100 == 0 {
			_ = bar.Set(i)
		}
	}
	if bar != nil {
		_ = bar.Finish()
	}
	sendTime := time.Since(start)
	posts.Wait()
	return late, sendTime
}

// drain waits until every submission answered 200 is counted, or max has
// passed.
func (t *tracker) drain(ctx context.Context, max time.Duration) {
	deadline := time.Now().Add(max)
	for left := t.open(); left > 0 && time.Now().Before(deadline) && ctx.Err() == nil; left = t.open() {
		fmt.Fprintf(os.Stderr, "\rbench-lb: %d submissions not counted yet   ", left)
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintln(os.Stderr)
}

// measure runs the poller and the submissions: first a warm-up, one
// listen per user, counted, flushed to Cassandra (flushed waits for the
// flusher) and read once more, so that the measured users are users
// with listens, whose first day the api has cached; then the measured
// run, after which it waits up to o.drainMax for the last submissions to
// be counted.
func measure(ctx context.Context, c *clients, base string, users []*user, o options, flushed func(context.Context) error, cpu func() cpuSample) (*result, error) {
	t := &tracker{users: users, poll: o.poll, r: newResult()}
	now := time.Now().Unix()
	for _, u := range users {
		u.listenedAt = now - 1
	}
	pctx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	polling := t.poller(pctx, c.poll, base, 16)
	rng := rand.New(rand.NewPCG(13, 17))

	fmt.Fprintf(os.Stderr, "bench-lb: warm-up: a listen for each of %d users …\n", len(users))
	t.send(ctx, c.submit, base, len(users), o.rate, rng, false)
	t.drain(ctx, o.drainMax)
	if err := flushed(ctx); err != nil {
		return nil, fmt.Errorf("warm-up: waiting for the flusher: %w", err)
	}
	for _, u := range users {
		n, _, err := listenCount(ctx, c.poll, base, u.name)
		if err != nil || n != 1 {
			return nil, fmt.Errorf("warm-up: %s's listen-count is %d (%v), want 1", u.name, n, err)
		}
	}
	t.mu.Lock()
	t.r = newResult()
	t.mu.Unlock()

	n := int(o.dur.Seconds() * float64(o.rate))
	cpu0 := cpu()
	start := time.Now()
	late, sendTime := t.send(ctx, c.submit, base, n, o.rate, rng, true)
	t.drain(ctx, o.drainMax)
	measureTime := time.Since(start)
	cpu1 := cpu()
	stopPoll()
	polling.Wait()

	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.r
	r.n, r.sendTime, r.measureTime, r.late, r.cpu0, r.cpu1 = n, sendTime, measureTime, late, cpu0, cpu1
	r.achieved = float64(n) / sendTime.Seconds()
	for _, u := range users {
		r.uncounted += u.open
	}
	return &r, nil
}
