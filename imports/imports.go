package imports

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/topk-charts/topk/listen"
)

// Format is the kind of a history file, told by its content.
type Format string

// The formats Read knows.
const (
	// FormatSpotify is Spotify's Extended Streaming History: a JSON array
	// of stream objects with ts and ms_played (spotify.go).
	FormatSpotify Format = "spotify-extended-streaming-history"
	// FormatListenBrainz is ListenBrainz's listen export: JSON lines (the
	// export zip's listens/YYYY/M.jsonl, since 2025) or one JSON array
	// (older exports) of listens with listened_at and track_metadata
	// (listenbrainz.go).
	FormatListenBrainz Format = "listenbrainz-export"
	// FormatEmpty is a file without records: empty, only whitespace, or
	// an empty JSON array. Nothing tells its format, and nothing needs to.
	FormatEmpty Format = "empty"
)

// The sources written in listen.Listen.Source.
const (
	SourceSpotify      = "spotify-export"
	SourceListenBrainz = "listenbrainz-export"
)

// Defaults of Options.
const (
	// DefaultMinPlayed is the shortest Spotify stream imported: Spotify
	// itself counts a stream as a play from 30 seconds on.
	DefaultMinPlayed = 30 * time.Second
	// DefaultProgressEvery is how many records pass between two calls of
	// Options.Progress within a file.
	DefaultProgressEvery = 10000
	// DefaultMaxExamples is how many examples a FileReport keeps per
	// refusal reason.
	DefaultMaxExamples = 3
	// DefaultMaxLineBytes is the longest line of a JSON lines file: a
	// listen of the export takes a few KiB at most.
	DefaultMaxLineBytes = 1 << 20
	// MaxRefusedBytes is the largest refused record whose bytes Refusal
	// carries: a dead-letter record stays well under Kafka's default
	// message size (1 MiB).
	MaxRefusedBytes = 256 << 10
)

// Options of Read. Only User is required; every zero value is a default.
type Options struct {
	// User is the topk user_id every listen is for (the export's own user
	// names, ListenBrainz's user_name, are ignored). It must pass the
	// contract's user_id rules.
	User string
	// Limits are the contract's configurable limits (TOPK_MAX_NAME_CHARS)
	// the listens are checked with, as ingest will check them.
	Limits listen.Limits
	// Now is the clock of the contract's played_at window (at most
	// listen.MaxFutureSkew ahead of it). Zero: time.Now() when Read starts.
	Now time.Time
	// MinPlayed is the shortest Spotify stream imported (ms_played); a
	// shorter one is skipped (SkipTooShort). 0: DefaultMinPlayed; negative:
	// no minimum.
	MinPlayed time.Duration
	// SkipIncognito skips Spotify streams of private sessions
	// (incognito_mode true; SkipIncognito). By default they are imported:
	// they are the user's listens, and the user chose to upload them.
	SkipIncognito bool
	// Zip are the limits on an archive.
	Zip ZipLimits
	// After resumes a read: the records up to and including this
	// position, and every file before After.File in the archive's order,
	// are passed over (counted in FileReport.Resumed, not handed to fn).
	// Read fails if the archive has no file of that name. nil: from the
	// start.
	After *Position
	// Refused, if set, is called with each refused record, in order with
	// the accepted ones handed to fn (a caller sends it to the dead-letter
	// topic with its reason). Its error stops the read, as fn's does.
	Refused func(Refusal) error
	// Progress, if set, is called every ProgressEvery records within a
	// file and once when a file ends.
	Progress func(Progress)
	// ProgressEvery: 0 is DefaultProgressEvery.
	ProgressEvery int
	// MaxExamples is how many examples a FileReport keeps per refusal
	// reason: 0 is DefaultMaxExamples, negative none.
	MaxExamples int
	// MaxLineBytes is the longest line of a JSON lines file; a longer
	// line is refused (RefuseTooLarge). 0: DefaultMaxLineBytes.
	MaxLineBytes int
}

// Position is where a record is: the file's name (the member's name in an
// archive, the name given to Read otherwise) and the record's index in it,
// from 0: the element of a JSON array, or the non-blank line of a JSON
// lines file. The same bytes give the same positions.
type Position struct {
	File  string `json:"file"`
	Index int    `json:"index"`
}

// Record is one accepted listen and where it was read.
type Record struct {
	Listen listen.Listen
	Position
}

// Refusal is one refused record: where it is, why, and its bytes as
// read (a copy, the caller's to keep; nil when over MaxRefusedBytes: a
// line over MaxLineBytes, which is not kept, or a huge array element).
type Refusal struct {
	Position
	Reason Reason
	Detail string
	Raw    []byte
}

// Progress is where a read is.
type Progress struct {
	File      string
	Index     int   // records of File read so far
	Bytes     int64 // bytes of File read so far (inflated bytes in an archive)
	FileBytes int64 // size of File (its declared size in an archive)
	Files     int   // files of the archive (1 for a single file)
	FilesDone int   // files read to their end before File
	Done      bool  // File has ended
	// Totals are the counts of every file read so far, File's included.
	Totals FileReport
}

func (o Options) withDefaults() Options {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.MinPlayed == 0 {
		o.MinPlayed = DefaultMinPlayed
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = DefaultProgressEvery
	}
	if o.MaxExamples == 0 {
		o.MaxExamples = DefaultMaxExamples
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	o.Zip = o.Zip.withDefaults()
	return o
}

// validate checks the user with the contract's own rules: a listen that is
// valid but for its user.
func (o Options) validate() error {
	probe := listen.Listen{UserID: o.User, PlayedAt: time.Unix(listen.MinPlayedAtUnix, 0), ArtistName: "a", TrackName: "t"}
	if err := probe.Validate(time.Unix(listen.MinPlayedAtUnix, 0)); err != nil {
		return fmt.Errorf("imports: user %q: %w", o.User, err)
	}
	return nil
}

// ReadFile is Read of the file at path, named by its base name.
func ReadFile(ctx context.Context, path string, opts Options, fn func(Record) error) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("imports: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("imports: %w", err)
	}
	return Read(ctx, f, st.Size(), filepath.Base(path), opts, fn)
}

// Read reads the history in r (size bytes, called name: a zip archive or
// one history file, told by content) and calls fn with each listen that
// passes the contract, in the order of the files (the archive's central
// directory) and of the records in each file. It never holds a whole file
// in memory: one record at a time, plus a buffer.
//
// The returned Report is never nil and counts what was read, also when
// Read fails. The error is nil when every file was read to its end, and
// else:
//   - a *FileError for each history file that could not be read to its
//     end (corrupt JSON, a damaged zip member) joined with errors.Join,
//     once every other file was read: the records read before the damage
//     were handed to fn;
//   - a *LimitError when the archive is over Options.Zip (before
//     anything is inflated, from its central directory) or a member
//     inflates past them or past its declared size (then the read stops);
//   - a *FormatError when name is not a history file or an archive holds
//     none;
//   - fn's error or ctx's error, as returned: the read stops there;
//   - any other error of the options or of reading r.
func Read(ctx context.Context, r io.ReaderAt, size int64, name string, opts Options, fn func(Record) error) (*Report, error) {
	rep := &Report{Name: name}
	if err := opts.validate(); err != nil {
		return rep, err
	}
	opts = opts.withDefaults()
	var magic [4]byte
	n, err := r.ReadAt(magic[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return rep, fmt.Errorf("imports: %s: %w", name, err)
	}
	rd := &reader{ctx: ctx, opts: opts, fn: fn, rep: rep}
	if isZip(magic[:n]) {
		rep.Archive = true
		return rep, rd.readZip(r, size, name)
	}
	if opts.After != nil && opts.After.File != name {
		return rep, fmt.Errorf("imports: cannot resume after %s #%d: %s is a single file", opts.After.File, opts.After.Index, name)
	}
	fr, err := rd.readFile(name, io.NewSectionReader(r, 0, size), size)
	if fr != nil && fr.Format == "" && fr.Err == nil {
		return rep, &FormatError{File: name, Detail: fr.Ignored}
	}
	if err != nil {
		return rep, err
	}
	if fr.Err != nil {
		return rep, fr.Err
	}
	return rep, nil
}

// isZip: a local file header, or the end of an empty archive.
func isZip(b []byte) bool {
	return bytes.Equal(b, []byte("PK\x03\x04")) || bytes.Equal(b, []byte("PK\x05\x06"))
}

// FormatError: a file that is not a history file Read knows, or an
// archive without one.
type FormatError struct {
	File   string
	Detail string
}

func (e *FormatError) Error() string {
	return "imports: " + e.File + ": not a Spotify Extended Streaming History or ListenBrainz export: " + e.Detail
}

// FileError: a history file that could not be read to its end. Records
// before Position were read and counted.
type FileError struct {
	File  string
	Index int // records of File read before the error
	Err   error
}

func (e *FileError) Error() string {
	return fmt.Sprintf("imports: %s: after %d records: %v", e.File, e.Index, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }
