// Reading one history file: telling its format by content (sniff), then
// its records one at a time, each through its format's mapping and the
// contract's checks.

package imports

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/topk-charts/topk/listen"
)

// reader is one call of Read.
type reader struct {
	ctx   context.Context
	opts  Options
	fn    func(Record) error
	rep   *Report
	files int // files of the archive, for Progress
	done  int // files read to their end
}

// outcome is what a format's mapping makes of one record: a listen to
// check against the contract, or a skip or a refusal with its detail.
type outcome struct {
	l      listen.Listen
	skip   Reason
	refuse Reason
	detail string
}

// mapper maps one record (a JSON value) of a format.
type mapper func(raw []byte) outcome

func (rd *reader) mapper(f Format) mapper {
	if f == FormatSpotify {
		return rd.spotify
	}
	return rd.listenBrainz
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// file is the state of the file being read.
type file struct {
	*FileReport
	size  int64
	count *countReader
	next  int // index of the next record
}

// readFile reads one history file (a single file, or a member of an
// archive) and adds its FileReport. It returns an error only when the
// whole read must stop (fn's, ctx's, a *LimitError); a file that cannot be
// read to its end gets FileReport.Err, and one that is not a history file
// FileReport.Ignored.
func (rd *reader) readFile(name string, r io.Reader, size int64) (*FileReport, error) {
	f := &file{FileReport: &FileReport{File: name}, size: size, count: &countReader{r: r}}
	rd.rep.Files = append(rd.rep.Files, f.FileReport)
	br := bufio.NewReaderSize(f.count, 64<<10)
	first, err := sniff(br)
	switch {
	case errors.Is(err, io.EOF):
		f.Format = FormatEmpty
		return f.FileReport, rd.end(f)
	case err != nil:
		return f.FileReport, rd.fail(f, err)
	}
	switch first {
	case '[':
		err = rd.readArray(f, br)
	case '{':
		err = rd.readLines(f, br)
	default:
		head, _ := br.Peek(8)
		f.Ignored = describe(head)
	}
	if err != nil {
		return f.FileReport, err
	}
	return f.FileReport, rd.end(f)
}

// sniff skips a UTF-8 byte order mark and whitespace and returns the first
// byte after them, left unread; io.EOF when there is none.
func sniff(br *bufio.Reader) (byte, error) {
	if bom, err := br.Peek(3); err == nil && bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
	}
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		_ = br.UnreadByte()
		return b, nil
	}
}

// describe says what a file that is neither JSON nor zip starts like.
func describe(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("%PDF")):
		return "a PDF document"
	case isZip(head[:min(4, len(head))]):
		return "a zip archive (archives inside an archive are not read)"
	}
	return "neither JSON nor a zip archive"
}

// classify tells the format from the first record's fields.
func classify(raw []byte) (Format, string) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return "", "its first record is not a JSON object"
	}
	has := func(keys ...string) bool {
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				return false
			}
		}
		return true
	}
	switch {
	case has("ts", "ms_played"):
		return FormatSpotify, ""
	case has("listened_at", "track_metadata"):
		return FormatListenBrainz, ""
	case has("endTime", "msPlayed"):
		return "", "Spotify's account data StreamingHistory (endTime, msPlayed: minutes, no track ids) is not read; request the Extended streaming history"
	}
	return "", "JSON records without ts and ms_played (Spotify) or listened_at and track_metadata (ListenBrainz)"
}

// readArray reads a JSON array of records: Spotify's files, ListenBrainz's
// older exports. A syntax error ends the file (FileReport.Err): after it
// no element can be found.
func (rd *reader) readArray(f *file, br *bufio.Reader) error {
	dec := json.NewDecoder(br)
	if _, err := dec.Token(); err != nil { // '['
		return rd.fail(f, err)
	}
	var m mapper
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return rd.fail(f, err)
		}
		if m == nil {
			format, why := classify(raw)
			if format == "" {
				f.Ignored = why
				return nil
			}
			f.Format, m = format, rd.mapper(format)
		}
		if err := rd.record(f, raw, m); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // ']'
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return rd.fail(f, err)
	}
	if m == nil {
		f.Format = FormatEmpty
	}
	return nil
}

// readLines reads JSON lines: ListenBrainz's export. A line that is not
// JSON is refused (RefuseNotJSON) and the next one read.
func (rd *reader) readLines(f *file, br *bufio.Reader) error {
	var m mapper
	for {
		line, tooLong, err := readLine(br, rd.opts.MaxLineBytes)
		if err != nil && !errors.Is(err, io.EOF) {
			return rd.fail(f, err)
		}
		if len(bytes.TrimSpace(line)) > 0 || tooLong {
			if m == nil {
				if tooLong {
					f.Ignored = fmt.Sprintf("its first line is longer than %d bytes", rd.opts.MaxLineBytes)
					return nil
				}
				format, why := classify(line)
				if format == "" {
					f.Ignored = why
					return nil
				}
				f.Format, m = format, rd.mapper(format)
			}
			rm := m
			if tooLong {
				rm = rd.tooLong
			}
			if err := rd.record(f, line, rm); err != nil {
				return err
			}
		}
		if err != nil { // io.EOF
			return nil
		}
	}
}

// tooLong refuses a line over Options.MaxLineBytes.
func (rd *reader) tooLong([]byte) outcome {
	return outcome{refuse: RefuseTooLarge, detail: fmt.Sprintf("a line longer than %d bytes", rd.opts.MaxLineBytes)}
}

// readLine reads one line without its newline; a line over max bytes is
// read to its end but returned empty with tooLong. err is io.EOF after
// the last line.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > max+1 { // +1: the newline
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimSuffix(line, []byte("\n")), tooLong, err
	}
}

// record handles the record at f.next: passed over when resuming, else
// mapped, checked against the contract and, when accepted, handed to fn.
func (rd *reader) record(f *file, raw []byte, m mapper) error {
	index := f.next
	f.next++
	if a := rd.opts.After; a != nil && a.File == f.File && index <= a.Index {
		f.Resumed++
	} else {
		f.Read++
		o := m(raw)
		if o.skip == "" && o.refuse == "" {
			o = rd.check(o.l)
		}
		switch {
		case o.skip != "":
			f.skip(o.skip)
		case o.refuse != "":
			f.refuse(o.refuse, index, o.detail, rd.opts.MaxExamples)
			if rd.opts.Refused != nil {
				var kept []byte
				if len(raw) <= MaxRefusedBytes {
					kept = bytes.Clone(raw)
				}
				if err := rd.opts.Refused(Refusal{Position: Position{File: f.File, Index: index}, Reason: o.refuse, Detail: o.detail, Raw: kept}); err != nil {
					return err
				}
			}
		default:
			f.Accepted++
			if err := rd.fn(Record{Listen: o.l, Position: Position{File: f.File, Index: index}}); err != nil {
				return err
			}
		}
	}
	if f.next%256 == 0 {
		if err := rd.ctx.Err(); err != nil {
			return err
		}
	}
	if rd.opts.Progress != nil && f.next%rd.opts.ProgressEvery == 0 {
		rd.progress(f, false)
	}
	return nil
}

// check applies the contract, as ingest will: the listen's fields, then
// the size of its record. The listen handed on is canonical.
func (rd *reader) check(l listen.Listen) outcome {
	if err := rd.opts.Limits.Validate(l, rd.opts.Now); err != nil {
		return outcome{refuse: Reason(listen.ReasonOf(err)), detail: err.Error()}
	}
	l = l.Canonical()
	record, err := json.Marshal(l)
	if err != nil {
		return outcome{refuse: RefuseBadRecord, detail: err.Error()}
	}
	if len(record) > listen.MaxRecordBytes {
		return outcome{refuse: RefuseTooLarge, detail: fmt.Sprintf("its record takes %d bytes, over the contract's %d", len(record), listen.MaxRecordBytes)}
	}
	return outcome{l: l}
}

// fail ends a file on a read error: the read stops on a limit, a file
// error is kept in its report.
func (rd *reader) fail(f *file, err error) error {
	var le *LimitError
	if errors.As(err, &le) {
		return err
	}
	if err := rd.ctx.Err(); err != nil {
		return err
	}
	f.Err = &FileError{File: f.File, Index: f.next, Err: err}
	return nil
}

// end reports a file's end to Progress.
func (rd *reader) end(f *file) error {
	if rd.opts.Progress != nil {
		rd.progress(f, true)
	}
	return rd.ctx.Err()
}

func (rd *reader) progress(f *file, done bool) {
	rd.opts.Progress(Progress{
		File: f.File, Index: f.next, Bytes: f.count.n, FileBytes: f.size,
		Files: max(rd.files, 1), FilesDone: rd.done, Done: done,
		Totals: rd.rep.Totals(),
	})
}
