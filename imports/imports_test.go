package imports_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/topk-charts/topk/imports"
	"github.com/topk-charts/topk/internal/importfixture"
	"github.com/topk-charts/topk/listen"
)

var now = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func options() imports.Options {
	return imports.Options{User: importfixture.User, Now: now}
}

// read reads data and collects the records.
func read(t *testing.T, data []byte, name string, opts imports.Options) (*imports.Report, []imports.Record, error) {
	t.Helper()
	var got []imports.Record
	rep, err := imports.Read(context.Background(), bytes.NewReader(data), int64(len(data)), name, opts, func(r imports.Record) error {
		got = append(got, r)
		return nil
	})
	if rep == nil {
		t.Fatal("Read returned a nil report")
	}
	return rep, got, err
}

func strMap(m map[imports.Reason]int) map[string]int {
	if len(m) == 0 {
		return nil
	}
	out := map[string]int{}
	for k, v := range m {
		out[string(k)] = v
	}
	return out
}

func canon(l listen.Listen) listen.Listen {
	l.PlayedAt = time.Unix(l.PlayedAt.Unix(), 0).UTC()
	return l
}

// checkFile compares one file's report and records with the generator's
// expectation.
func checkFile(t *testing.T, got *imports.FileReport, records []imports.Record, want *importfixture.File) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: no report", want.Name)
		return
	}
	if got.File != want.Name || string(got.Format) != want.Format || (got.Ignored != "") != want.Ignored {
		t.Errorf("%s: file %q format %q ignored %q, want %q %q ignored %v", want.Name, got.File, got.Format, got.Ignored, want.Name, want.Format, want.Ignored)
	}
	if got.Read != want.Read || got.Accepted != want.Accepted {
		t.Errorf("%s: read %d accepted %d, want %d %d", want.Name, got.Read, got.Accepted, want.Read, want.Accepted)
	}
	if s := strMap(got.Skipped); !reflect.DeepEqual(s, want.Skipped) {
		t.Errorf("%s: skipped %v, want %v", want.Name, s, want.Skipped)
	}
	if r := strMap(got.Refused); !reflect.DeepEqual(r, want.Refused) {
		t.Errorf("%s: refused %v, want %v (examples %v)", want.Name, r, want.Refused, got.Examples)
	}
	sum := got.Accepted
	for _, n := range got.Skipped {
		sum += n
	}
	for _, n := range got.Refused {
		sum += n
	}
	if sum != got.Read {
		t.Errorf("%s: accepted+skipped+refused = %d, read %d", want.Name, sum, got.Read)
	}
	for reason, ex := range got.Examples {
		if len(ex) == 0 || len(ex) > imports.DefaultMaxExamples || len(ex) > got.Refused[reason] {
			t.Errorf("%s: %d examples of %s (refused %d)", want.Name, len(ex), reason, got.Refused[reason])
		}
	}
	if (got.Err != nil) != want.Err {
		t.Errorf("%s: err %v, want an error: %v", want.Name, got.Err, want.Err)
	}
	var mine []imports.Record
	for _, r := range records {
		if r.File == want.Name {
			mine = append(mine, r)
		}
	}
	if len(mine) != len(want.Listens) {
		t.Errorf("%s: %d records, want %d", want.Name, len(mine), len(want.Listens))
		return
	}
	for i, w := range want.Listens {
		if mine[i].Index != w.Index || canon(mine[i].Listen) != canon(w.Listen) {
			t.Errorf("%s: record %d:\n got #%d %+v\nwant #%d %+v", want.Name, i, mine[i].Index, mine[i].Listen, w.Index, w.Listen)
		}
	}
}

func checkArchive(t *testing.T, rep *imports.Report, records []imports.Record, exp importfixture.Expect) {
	t.Helper()
	if len(rep.Files) != len(exp.Files) {
		var names []string
		for _, f := range rep.Files {
			names = append(names, f.File)
		}
		t.Fatalf("files %q, want %d", names, len(exp.Files))
	}
	for i, want := range exp.Files {
		checkFile(t, rep.Files[i], records, want)
	}
	if len(records) != len(exp.Listens()) {
		t.Errorf("%d records, want %d", len(records), len(exp.Listens()))
	}
	tot := rep.Totals()
	if tot.Accepted != len(exp.Listens()) {
		t.Errorf("totals accepted %d, want %d", tot.Accepted, len(exp.Listens()))
	}
}

func TestSpotifyArchive(t *testing.T) {
	data, exp := importfixture.Spotify(true)
	rep, records, err := read(t, data, importfixture.SpotifyCorruptName, options())
	var fe *imports.FileError
	if !errors.As(err, &fe) || !strings.Contains(fe.File, "Streaming_History_Audio_2023_2.json") || fe.Index != 2 {
		t.Fatalf("err %v, want the corrupt file's error after 2 records", err)
	}
	if !strings.Contains(err.Error(), "Streaming_History_Audio_2023_2.json") {
		t.Errorf("error %q does not name the file", err)
	}
	if !rep.Archive {
		t.Error("not read as an archive")
	}
	checkArchive(t, rep, records, exp)

	// The duplicate across two files is handed on twice, with one identity:
	// the pipeline counts it once.
	var dups []imports.Record
	for _, r := range records {
		if r.Listen.TrackName == "All Is Full of Love" {
			dups = append(dups, r)
		}
	}
	if len(dups) != 2 || dups[0].File == dups[1].File || dups[0].Listen.Identity() != dups[1].Listen.Identity() {
		t.Errorf("duplicate: %+v", dups)
	}
	// Every listen is one ingest accepts.
	for _, r := range records {
		if err := r.Listen.Validate(now); err != nil {
			t.Errorf("%v: %v", r.Position, err)
		}
		if r.Listen.DurationMS != 0 || r.Listen.Source != imports.SourceSpotify {
			t.Errorf("%v: duration %d source %q", r.Position, r.Listen.DurationMS, r.Listen.Source)
		}
	}
}

// The committed fixture is the generator's, and reads without error.
func TestSpotifyCommittedFixture(t *testing.T) {
	data, exp := importfixture.Spotify(false)
	committed, err := os.ReadFile(filepath.Join("testdata", importfixture.SpotifyName))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, data) {
		t.Fatalf("testdata/%s differs from the generator's: go run ./imports/fixturegen -out imports/testdata", importfixture.SpotifyName)
	}
	var records []imports.Record
	rep, err := imports.ReadFile(context.Background(), filepath.Join("testdata", importfixture.SpotifyName), options(), func(r imports.Record) error {
		records = append(records, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Name != importfixture.SpotifyName {
		t.Errorf("name %q", rep.Name)
	}
	checkArchive(t, rep, records, exp)
}

func TestSpotifySingleFile(t *testing.T) {
	data, want := importfixture.SpotifyFile()
	name := filepath.Base(want.Name)
	want.Name = name
	rep, records, err := read(t, data, name, options())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Archive || len(rep.Files) != 1 {
		t.Fatalf("report %+v", rep)
	}
	checkFile(t, rep.Files[0], records, want)
	ex := rep.Files[0].Examples[imports.Reason(listen.ReasonPlayedAtOutOfRange)]
	if len(ex) != 1 || !strings.Contains(ex[0].Detail, "2002") {
		t.Errorf("examples of played_at_out_of_range: %+v", ex)
	}
}

func TestListenBrainzArchive(t *testing.T) {
	data, exp := importfixture.ListenBrainz()
	rep, records, err := read(t, data, importfixture.ListenBrainzName, options())
	if err != nil {
		t.Fatal(err)
	}
	checkArchive(t, rep, records, exp)
	for _, r := range records {
		if r.Listen.Source != imports.SourceListenBrainz {
			t.Errorf("%v: source %q", r.Position, r.Listen.Source)
		}
	}
	// The not_json line is the 4th record: the blank line before it has no index.
	ex := rep.File("listens/2023/1.jsonl").Examples[imports.RefuseNotJSON]
	if len(ex) != 1 || ex[0].Index != 3 {
		t.Errorf("not_json examples %+v", ex)
	}
}

func TestListenBrainzArray(t *testing.T) {
	data, want := importfixture.ListenBrainzArray()
	rep, records, err := read(t, data, want.Name, options())
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, rep.Files[0], records, want)
}

func TestNotAHistoryFile(t *testing.T) {
	for name, content := range map[string]string{
		"ReadMe.pdf":             "%PDF-1.4\n%%EOF\n",
		"user.json":              `{"user_id": 7, "username": "alice"}`,
		"playlists.json":         `[{"name": "Road trip", "items": []}]`,
		"StreamingHistory0.json": `[{"endTime": "2019-03-01 12:34", "artistName": "A", "trackName": "T", "msPlayed": 200000}]`,
		"notes.txt":              "hello",
		"broken.json":            `[{"ts": "2019-`,
	} {
		_, records, err := read(t, []byte(content), name, options())
		var fmtErr *imports.FormatError
		var fileErr *imports.FileError
		switch {
		case name == "broken.json":
			if !errors.As(err, &fileErr) {
				t.Errorf("%s: err %v, want a *FileError", name, err)
			}
		case !errors.As(err, &fmtErr):
			t.Errorf("%s: err %v, want a *FormatError", name, err)
		}
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v does not name the file", name, err)
		}
		if len(records) != 0 {
			t.Errorf("%s: %d records", name, len(records))
		}
	}
}

func TestEmptyFile(t *testing.T) {
	for _, content := range []string{"", "  \n", "[]", "\xef\xbb\xbf[ ]\n"} {
		rep, _, err := read(t, []byte(content), "x.json", options())
		if err != nil || rep.Files[0].Format != imports.FormatEmpty || rep.Files[0].Read != 0 {
			t.Errorf("%q: err %v report %+v", content, err, rep.Files)
		}
	}
}

func TestZipLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		data   []byte
		limits imports.ZipLimits
		file   string
	}{
		{"bomb", importfixture.Bomb(), imports.ZipLimits{MaxEntryBytes: 4 << 20}, "Streaming_History_Audio_2020_0.json"},
		{"declared bomb, default limits", importfixture.DeclaredBomb(), imports.ZipLimits{}, "Streaming_History_Audio_2020_0.json"},
		{"total", importfixture.TwoMembers(3 << 20), imports.ZipLimits{MaxEntryBytes: 4 << 20, MaxTotalBytes: 5 << 20}, ""},
		{"entries", importfixture.ManyEntriesArchive(), imports.ZipLimits{MaxEntries: 10}, ""},
	} {
		opts := options()
		opts.Zip = tc.limits
		rep, records, err := read(t, tc.data, tc.name+".zip", opts)
		var le *imports.LimitError
		if !errors.As(err, &le) || le.File != tc.file || !strings.Contains(err.Error(), tc.name+".zip") {
			t.Errorf("%s: err %v, want a *LimitError about %q", tc.name, err, tc.file)
			continue
		}
		// Refused from the central directory: nothing was opened.
		if len(records) != 0 || len(rep.Files) != 0 {
			t.Errorf("%s: %d records, %d files read", tc.name, len(records), len(rep.Files))
		}
	}
	// Within the limits, the same archives read.
	opts := options()
	opts.Zip = imports.ZipLimits{MaxEntryBytes: 4 << 20, MaxTotalBytes: 7 << 20}
	if _, _, err := read(t, importfixture.TwoMembers(3<<20), "total.zip", opts); err != nil {
		t.Errorf("two members within the limits: %v", err)
	}
}

func TestLyingHeader(t *testing.T) {
	data, exp := importfixture.LyingHeader()
	rep, records, err := read(t, data, importfixture.LyingHeaderName, options())
	var le *imports.LimitError
	if !errors.As(err, &le) || le.File != "Streaming_History_Audio_2020_1.json" || !strings.Contains(le.Detail, "header declares") {
		t.Fatalf("err %v, want a *LimitError about the lying member", err)
	}
	// The honest member before it was read.
	checkFile(t, rep.Files[0], records, exp.Files[0])
	if len(records) != 1 {
		t.Errorf("%d records, want the first member's 1", len(records))
	}
}

func TestResume(t *testing.T) {
	data, _ := importfixture.Spotify(false)
	_, all, err := read(t, data, importfixture.SpotifyName, options())
	if err != nil {
		t.Fatal(err)
	}
	for k := range all {
		opts := options()
		after := all[k].Position
		opts.After = &after
		rep, rest, err := read(t, data, importfixture.SpotifyName, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(rest, all[k+1:]) && !(len(rest) == 0 && k == len(all)-1) {
			t.Fatalf("after %v: %d records, want %d", after, len(rest), len(all)-k-1)
		}
		f := rep.File(after.File)
		if f.Resumed != after.Index+1 {
			t.Errorf("after %v: resumed %d", after, f.Resumed)
		}
		for _, fr := range rep.Files {
			if fr.File == after.File {
				break
			}
			if !fr.Passed || fr.Read != 0 {
				t.Errorf("after %v: %s not passed over: %+v", after, fr.File, fr)
			}
		}
	}
	opts := options()
	opts.After = &imports.Position{File: "nope.json", Index: 3}
	if _, records, err := read(t, data, importfixture.SpotifyName, opts); err == nil || len(records) != 0 {
		t.Errorf("resume after a file not in the archive: err %v, %d records", err, len(records))
	}
}

func TestStop(t *testing.T) {
	data, _ := importfixture.Spotify(false)
	stop := errors.New("stop")
	n := 0
	_, err := imports.Read(context.Background(), bytes.NewReader(data), int64(len(data)), "x.zip", options(), func(imports.Record) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Errorf("err %v after %d records", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = imports.Read(ctx, bytes.NewReader(data), int64(len(data)), "x.zip", options(), func(imports.Record) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err %v", err)
	}
}

func TestOptions(t *testing.T) {
	data, want := importfixture.SpotifyFile()
	base := want.Accepted

	opts := options()
	opts.MinPlayed = -1
	rep, _, err := read(t, data, "a.json", opts)
	if err != nil || rep.Files[0].Accepted != base+want.Skipped["too_short"] || rep.Files[0].Skipped[imports.SkipTooShort] != 0 {
		t.Errorf("no minimum: err %v, %+v", err, rep.Files[0])
	}
	opts = options()
	opts.MinPlayed = 4 * time.Minute
	rep, _, _ = read(t, data, "a.json", opts)
	if got := rep.Files[0].Accepted; got != 2 { // Weird Fishes (300 s), Jóga (240 s)
		t.Errorf("4 minutes minimum: %d accepted, want 2", got)
	}
	opts = options()
	opts.SkipIncognito = true
	rep, _, _ = read(t, data, "a.json", opts)
	if rep.Files[0].Skipped[imports.SkipIncognito] != 1 || rep.Files[0].Accepted != base-1 {
		t.Errorf("skip incognito: %+v", rep.Files[0])
	}
	opts = options()
	opts.Limits = listen.Limits{MaxNameChars: 1000}
	rep, _, _ = read(t, data, "a.json", opts)
	if rep.Files[0].Refused[imports.Reason(listen.ReasonNameTooLong)] != 0 || rep.Files[0].Accepted != base+1 {
		t.Errorf("longer names: %+v", rep.Files[0])
	}
	for _, user := range []string{"", "a|b", " alice", strings.Repeat("u", 129)} {
		opts := options()
		opts.User = user
		if _, records, err := read(t, data, "a.json", opts); err == nil || len(records) != 0 {
			t.Errorf("user %q: err %v", user, err)
		}
	}
}

func TestProgress(t *testing.T) {
	data, exp := importfixture.Spotify(false)
	var calls []imports.Progress
	opts := options()
	opts.ProgressEvery = 5
	opts.Progress = func(p imports.Progress) { calls = append(calls, p) }
	if _, _, err := read(t, data, "x.zip", opts); err != nil {
		t.Fatal(err)
	}
	ends := map[string]imports.Progress{}
	for _, c := range calls {
		if c.Files != len(exp.Files) || c.Bytes > c.FileBytes {
			t.Errorf("progress %+v", c)
		}
		if c.Done {
			ends[c.File] = c
		} else if c.Index%5 != 0 {
			t.Errorf("progress within a file at %d", c.Index)
		}
	}
	for i, f := range exp.Files {
		if f.Ignored {
			continue
		}
		e, ok := ends[f.Name]
		if !ok || e.Index != f.Read || e.FilesDone != i || e.Bytes != e.FileBytes {
			t.Errorf("%s: end %+v (read %d)", f.Name, e, f.Read)
		}
	}
}

func TestLongLine(t *testing.T) {
	line := `{"listened_at":1672531200,"track_metadata":{"artist_name":"A","track_name":"T"}}`
	long := `{"listened_at":1672531201,"track_metadata":{"artist_name":"A","track_name":"` + strings.Repeat("t", 300) + `"}}`
	data := []byte(line + "\n" + long + "\n" + line + "\n")
	opts := options()
	opts.MaxLineBytes = 200
	rep, records, err := read(t, data, "1.jsonl", opts)
	f := rep.Files[0]
	if err != nil || f.Read != 3 || f.Accepted != 2 || f.Refused[imports.RefuseTooLarge] != 1 || len(records) != 2 || records[1].Index != 2 {
		t.Errorf("err %v report %+v", err, f)
	}
}

// Refused hands every refused record on, with its position, reason and
// bytes, in file order; the counts agree with the report.
func TestRefusedHook(t *testing.T) {
	data, exp := importfixture.Spotify(false)
	var refused []imports.Refusal
	opts := options()
	opts.Refused = func(r imports.Refusal) error {
		refused = append(refused, r)
		return nil
	}
	rep, _, err := read(t, data, "my_spotify_data.zip", opts)
	if err != nil {
		t.Fatal(err)
	}
	tot := rep.Totals()
	n := 0
	for _, c := range tot.Refused {
		n += c
	}
	if n == 0 || len(refused) != n {
		t.Fatalf("%d refusals handed on, report refused %d", len(refused), n)
	}
	byReason := map[string]int{}
	for i, r := range refused {
		byReason[string(r.Reason)]++
		if len(r.Raw) == 0 || r.Detail == "" || r.File == "" {
			t.Errorf("refusal %d: %+v", i, r)
		}
		if i > 0 && r.File == refused[i-1].File && r.Index <= refused[i-1].Index {
			t.Errorf("refusal %d out of order: %v after %v", i, r.Position, refused[i-1].Position)
		}
	}
	want := map[string]int{}
	for _, f := range exp.Files {
		for k, v := range f.Refused {
			want[k] += v
		}
	}
	if !reflect.DeepEqual(byReason, want) {
		t.Errorf("refusals by reason %v, want %v", byReason, want)
	}
	// The hook's error stops the read.
	stop := errors.New("stop")
	opts.Refused = func(imports.Refusal) error { return stop }
	if _, _, err := read(t, data, "my_spotify_data.zip", opts); !errors.Is(err, stop) {
		t.Errorf("err %v, want the hook's", err)
	}
}
