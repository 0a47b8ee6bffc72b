// Reading an archive: its limits, checked from the central directory before
// anything is inflated and enforced again while inflating, so that neither
// a zip bomb (a tiny archive that inflates to gigabytes) nor a header that
// lies about a member's size gets past them.

package imports

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Defaults of ZipLimits. Spotify splits its history into files of about
// 12 MB, ListenBrainz into one file a month: a decade of heavy listening
// is a few hundred MB and a few hundred files.
const (
	DefaultMaxTotalBytes = 2 << 30
	DefaultMaxEntryBytes = 512 << 20
	DefaultMaxEntries    = 10000
)

// ZipLimits bound what an archive may inflate to. Zero values are the
// defaults.
type ZipLimits struct {
	// MaxTotalBytes bounds the sum of the members' sizes (inflated).
	MaxTotalBytes int64
	// MaxEntryBytes bounds each member's size (inflated).
	MaxEntryBytes int64
	// MaxEntries bounds the number of entries, folders included.
	MaxEntries int
}

func (z ZipLimits) withDefaults() ZipLimits {
	if z.MaxTotalBytes <= 0 {
		z.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if z.MaxEntryBytes <= 0 {
		z.MaxEntryBytes = DefaultMaxEntryBytes
	}
	if z.MaxEntries <= 0 {
		z.MaxEntries = DefaultMaxEntries
	}
	return z
}

// LimitError: an archive refused for its size, from its central directory
// (before inflating anything) or while inflating File.
type LimitError struct {
	Archive string
	File    string // "" when the archive as a whole is over a limit
	Detail  string
}

func (e *LimitError) Error() string {
	where := e.Archive
	if e.File != "" {
		where += ": " + e.File
	}
	return "imports: " + where + ": refused, possibly a zip bomb: " + e.Detail
}

// readZip reads every member of the archive in the order of its central
// directory, after checking the directory against the limits.
func (rd *reader) readZip(r io.ReaderAt, size int64, name string) error {
	zr, err := zip.NewReader(r, size)
	// ErrInsecurePath (a name like ../x, only with GODEBUG zipinsecurepath=0):
	// names are only reported here, nothing is written.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return fmt.Errorf("imports: %s: not a readable zip archive: %w", name, err)
	}
	lim := rd.opts.Zip
	if len(zr.File) > lim.MaxEntries {
		return &LimitError{Archive: name, Detail: fmt.Sprintf("%d entries, over the limit of %d", len(zr.File), lim.MaxEntries)}
	}
	var members []*zip.File
	var total uint64
	for _, f := range zr.File {
		if f.UncompressedSize64 > uint64(lim.MaxEntryBytes) {
			return &LimitError{Archive: name, File: f.Name, Detail: fmt.Sprintf("declares %d bytes inflated, over the limit of %d per file", f.UncompressedSize64, lim.MaxEntryBytes)}
		}
		total += f.UncompressedSize64
		if total > uint64(lim.MaxTotalBytes) {
			return &LimitError{Archive: name, Detail: fmt.Sprintf("its files declare more than %d bytes inflated, over the limit of %d", total, lim.MaxTotalBytes)}
		}
		if !f.FileInfo().IsDir() && !strings.HasSuffix(f.Name, "/") {
			members = append(members, f)
		}
	}
	rd.files = len(members)
	start := 0
	if a := rd.opts.After; a != nil {
		start = -1
		for i, f := range members {
			if f.Name == a.File {
				start = i
				break
			}
		}
		if start < 0 {
			return fmt.Errorf("imports: cannot resume after %s #%d: %s has no such file", a.File, a.Index, name)
		}
		for _, f := range members[:start] {
			rd.rep.Files = append(rd.rep.Files, &FileReport{File: f.Name, Passed: true})
		}
		rd.done = start
	}
	var inflated int64
	var errs []error
	for _, f := range members[start:] {
		er := &entryReader{archive: name, name: f.Name, declared: int64(f.UncompressedSize64),
			limit: min(lim.MaxEntryBytes, lim.MaxTotalBytes-inflated), descriptor: f.Flags&0x8 != 0}
		rc, err := f.Open()
		if err != nil {
			// An unknown compression method: this member only.
			fr := &FileReport{File: f.Name, Err: &FileError{File: f.Name, Err: err}}
			rd.rep.Files = append(rd.rep.Files, fr)
			errs = append(errs, fr.Err)
			rd.done++
			continue
		}
		er.r = rc
		fr, err := rd.readFile(f.Name, er, int64(f.UncompressedSize64))
		rc.Close()
		inflated += er.n
		if err != nil {
			return err
		}
		if fr.Err != nil {
			errs = append(errs, fr.Err)
		}
		rd.done++
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, fr := range rd.rep.Files {
		if fr.Format != "" || fr.Passed {
			return nil
		}
	}
	return &FormatError{File: name, Detail: fmt.Sprintf("none of its %d files is a history file", len(members))}
}

// entryReader inflates one member within its limit, min(MaxEntryBytes,
// what MaxTotalBytes leaves), whatever its header declares: a read past
// the limit is a *LimitError, and so is archive/zip's ErrFormat once the
// member inflated to its declared size (archive/zip refuses to inflate a
// member past the size its header declares, with that error).
type entryReader struct {
	r        io.Reader
	archive  string
	name     string
	declared int64
	limit    int64
	n        int64
	// descriptor: the member has a data descriptor (flag bit 3)
	descriptor bool
}

func (e *entryReader) Read(p []byte) (int, error) {
	// Ask for no more than one byte past the limit (and past the declared
	// size), so that an overrun is seen at its first byte.
	if room := min(e.limit, e.declared) + 1 - e.n; room > 0 && int64(len(p)) > room {
		p = p[:room]
	}
	asked := int64(len(p))
	n, err := e.r.Read(p)
	e.n += int64(n)
	if e.n > e.limit {
		return 0, &LimitError{Archive: e.archive, File: e.name, Detail: fmt.Sprintf("inflates past %d bytes, the limit", e.limit)}
	}
	// archive/zip drops the read that goes past the declared size and
	// returns ErrFormat; at the end of a member with a data descriptor the
	// same error may also mean a damaged descriptor.
	if errors.Is(err, zip.ErrFormat) && e.n+asked > e.declared {
		detail := fmt.Sprintf("inflates past the %d bytes its header declares", e.declared)
		if e.descriptor {
			detail += ", or its data descriptor is damaged"
		}
		return n, &LimitError{Archive: e.archive, File: e.name, Detail: detail}
	}
	return n, err
}
