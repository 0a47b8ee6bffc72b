package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/topk-charts/topk/crawler"
	"github.com/topk-charts/topk/imports"
	"github.com/topk-charts/topk/imports/send"
	"github.com/topk-charts/topk/listen"
)

const importUsage = `usage: topk import --user U [flags] FILE...

Imports listening history files into U's charts: Spotify Extended
Streaming History (my_spotify_data.zip as downloaded, or its JSON files)
and ListenBrainz listen exports (the zip, or its JSON lines), told apart by
content. Listens go to Kafka like crawled ones and are counted once per
identity: importing a file again, or one that overlaps crawled or
submitted listens, counts nothing twice. Refused records go to the
dead-letter topic with their reason.

An interrupted import resumes where Kafka last acknowledged (a checkpoint
per user and file under --state); --restart reads the file from its start.

Exit status: 0 every file read and every record sent; 3 done, but records
were refused or a file could not be read to its end (see the report);
1 the import stopped (Kafka, a signal): run the same command again.

flags:`

// exitRefused is topk import's exit status when it finished but refused
// records or could not read a file to its end.
const exitRefused = 3

// exitError makes Main exit with code, after logging err when code is 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// runImport: `topk import --user U FILE...`.
func runImport(ctx context.Context, env *Env, args []string) error {
	fs := flags(env, "import")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, importUsage)
		fs.PrintDefaults()
	}
	user := fs.String("user", "", "the topk user the listens are for (required)")
	minPlayed := fs.Duration("min-played", imports.DefaultMinPlayed, "shortest Spotify stream imported (ms_played); shorter ones are skipped")
	skipIncognito := fs.Bool("skip-incognito", false, "skip Spotify streams of private sessions")
	restart := fs.Bool("restart", false, "ignore a checkpoint and read each file from its start")
	stateDir := fs.String("state", defaultImportState(), "folder of the checkpoints of interrupted imports")
	quiet := fs.Bool("quiet", false, "no progress line, only the report")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" || fs.NArg() == 0 {
		fs.Usage()
		return flag.ErrHelp
	}
	c := env.Config
	topics := listen.NewTopics(c.Namespace)
	pub, err := crawler.NewKafkaPublisher(ctx, c.Kafka.Brokers, string(topics.Raw))
	if err != nil {
		return err
	}
	defer pub.Close()

	bar := newProgressLine(env.Stderr, *quiet)
	var refusedOrDamaged bool
	for i, path := range fs.Args() {
		opts := imports.Options{
			User: *user, Limits: listen.Limits{MaxNameChars: c.Pipeline.MaxNameChars},
			MinPlayed: *minPlayed, SkipIncognito: *skipIncognito,
		}
		if *minPlayed == 0 {
			opts.MinPlayed = -1 // no minimum
		}
		rep, st, err := importFile(ctx, env, pub, topics, path, fmt.Sprintf("%d/%d", i+1, fs.NArg()), *stateDir, *restart, opts, bar)
		bar.done()
		if rep != nil {
			printImportReport(env.Stdout, path, rep, st)
		}
		switch {
		case err == nil:
		case send.Complete(err):
			// A damaged file: the rest was read and sent.
			refusedOrDamaged = true
			fmt.Fprintf(env.Stderr, "topk import: %s: %v\n", path, err)
		default:
			return &exitError{code: 1, err: fmt.Errorf("%s: %w", path, err)}
		}
		if rep != nil {
			for _, n := range rep.Totals().Refused {
				if n > 0 {
					refusedOrDamaged = true
				}
			}
		}
	}
	if refusedOrDamaged {
		return &exitError{code: exitRefused, err: errors.New("records were refused or a file could not be read to its end (see the report)")}
	}
	return nil
}

// importState is the checkpoint of one user's import of one file.
type importState struct {
	User    string           `json:"user"`
	File    string           `json:"file"`
	Size    int64            `json:"size"`
	ModTime time.Time        `json:"mod_time"`
	After   imports.Position `json:"after"`
	Saved   time.Time        `json:"saved"`
}

func defaultImportState() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "topk", "imports")
	}
	return filepath.Join(os.TempDir(), "topk-imports")
}

// importStatePath names the checkpoint of user's import of the file at
// abs with that size and time: a changed file starts again.
func importStatePath(dir, user, abs string, size int64, mod time.Time) string {
	h := sha256.Sum256([]byte(user + "\x00" + abs + "\x00" + strconv.FormatInt(size, 10) + "\x00" + mod.UTC().Format(time.RFC3339Nano)))
	return filepath.Join(dir, hex.EncodeToString(h[:12])+".json")
}

// importFile imports one file, resuming from its checkpoint.
func importFile(ctx context.Context, env *Env, pub *crawler.KafkaPublisher, topics listen.Topics, path, nth, stateDir string,
	restart bool, opts imports.Options, bar *progressLine) (*imports.Report, send.Status, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, send.Status{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, send.Status{}, err
	}
	abs, _ := filepath.Abs(path)
	statePath := importStatePath(stateDir, opts.User, abs, fi.Size(), fi.ModTime())
	if !restart {
		if b, err := os.ReadFile(statePath); err == nil {
			var s importState
			if err := json.Unmarshal(b, &s); err != nil {
				return nil, send.Status{}, fmt.Errorf("checkpoint %s: %w (remove it, or use --restart)", statePath, err)
			}
			opts.After = &s.After
			fmt.Fprintf(env.Stderr, "topk import: %s: resuming after %s record %d (checkpoint of %s)\n", path, s.After.File, s.After.Index, s.Saved.Format(time.RFC3339))
		}
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, send.Status{}, err
	}
	cfg := send.Config{
		Options: opts, Topics: topics, Producer: pub, Name: filepath.Base(path),
		Checkpoint: func(p imports.Position) error {
			b, _ := json.Marshal(importState{User: opts.User, File: abs, Size: fi.Size(), ModTime: fi.ModTime(), After: p, Saved: time.Now().UTC()})
			tmp := statePath + ".tmp"
			if err := os.WriteFile(tmp, b, 0o600); err != nil {
				return err
			}
			return os.Rename(tmp, statePath)
		},
		Progress: func(s send.Status) { bar.show(nth, path, s) },
	}
	rep, st, err := send.Run(ctx, f, fi.Size(), filepath.Base(path), cfg)
	if send.Complete(err) {
		// Read to the end (a damaged file as far as it goes) and every
		// record acknowledged: nothing to resume.
		if rerr := os.Remove(statePath); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			env.Log.Warn("checkpoint not removed", "path", statePath, "err", rerr)
		}
	}
	return rep, st, err
}

// printImportReport writes what an import of path read, per file.
func printImportReport(w io.Writer, path string, rep *imports.Report, st send.Status) {
	t := rep.Totals()
	fmt.Fprintf(w, "%s: %d records read", path, t.Read)
	if t.Resumed > 0 {
		fmt.Fprintf(w, " (%d passed over: read before the checkpoint)", t.Resumed)
	}
	fmt.Fprintf(w, ", %d accepted, %d skipped by rule, %d refused; %d listens and %d refused records sent to Kafka (reading %s, Kafka %s)\n",
		t.Accepted, sum(t.Skipped), sum(t.Refused), st.Sent, st.DeadLetters, st.Reading.Round(time.Millisecond), st.Sending.Round(time.Millisecond))
	for _, f := range rep.Files {
		switch {
		case f.Ignored != "":
			fmt.Fprintf(w, "  %s: not a history file (%s)\n", f.File, f.Ignored)
			continue
		case f.Format == imports.FormatEmpty:
			fmt.Fprintf(w, "  %s: empty\n", f.File)
			continue
		}
		fmt.Fprintf(w, "  %s (%s): read %d, accepted %d", f.File, f.Format, f.Read, f.Accepted)
		if len(f.Skipped) > 0 {
			fmt.Fprintf(w, ", skipped %s", reasons(f.Skipped))
		}
		if len(f.Refused) > 0 {
			fmt.Fprintf(w, ", refused %s", reasons(f.Refused))
		}
		fmt.Fprintln(w)
		for _, r := range sortedReasons(f.Examples) {
			for _, ex := range f.Examples[r] {
				fmt.Fprintf(w, "    refused #%d (%s): %s\n", ex.Index, r, ex.Detail)
			}
		}
		if f.Err != nil {
			fmt.Fprintf(w, "    could not be read to its end: %v\n", f.Err)
		}
	}
}

func sum(m map[imports.Reason]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func reasons(m map[imports.Reason]int) string {
	var parts []string
	for _, r := range sortedReasons(m) {
		parts = append(parts, fmt.Sprintf("%d %s", m[r], r))
	}
	return strings.Join(parts, ", ")
}

func sortedReasons[V any](m map[imports.Reason]V) []imports.Reason {
	rs := make([]imports.Reason, 0, len(m))
	for r := range m {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i] < rs[j] })
	return rs
}

// progressLine is topk import's progress: one line rewritten in place on
// a terminal, a line every 5 s otherwise.
type progressLine struct {
	w        io.Writer
	tty      bool
	quiet    bool
	last     time.Time
	shown    bool
	lastDone string // the file whose end was shown last
}

func newProgressLine(w io.Writer, quiet bool) *progressLine {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progressLine{w: w, tty: tty, quiet: quiet}
}

func (p *progressLine) show(nth, path string, s send.Status) {
	if p.quiet || s.Files == 0 { // nothing read yet
		return
	}
	every := 5 * time.Second
	if p.tty {
		every = 100 * time.Millisecond
	}
	fileEnded := s.Done && s.File != p.lastDone // each file's end is shown once
	if time.Since(p.last) < every && !fileEnded {
		return
	}
	if s.Done {
		p.lastDone = s.File
	}
	p.last = time.Now()
	t := s.Totals
	pct := ""
	if s.FileBytes > 0 {
		pct = fmt.Sprintf(" %3.0f%%", 100*float64(s.Bytes)/float64(s.FileBytes))
	}
	line := fmt.Sprintf("[%s] %s: file %d/%d %s%s · read %d · accepted %d · skipped %d · refused %d · sent %d",
		nth, filepath.Base(path), min(s.FilesDone+1, s.Files), s.Files, s.File, pct, t.Read, t.Accepted, sum(t.Skipped), sum(t.Refused), s.Sent)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
	p.shown = true
}

// done ends the line of a file on a terminal.
func (p *progressLine) done() {
	if p.tty && p.shown {
		fmt.Fprintln(p.w)
	}
	p.shown = false
	p.last = time.Time{}
	p.lastDone = ""
}
