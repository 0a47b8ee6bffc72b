package imports

import (
	"slices"

	"github.com/topk-charts/topk/listen"
)

// Reason says why a record was skipped or refused: one of the constants
// below or a listen.Reason of the contract (as Reason(r)).
type Reason string

// Reasons a record is skipped by rule: it is fine, but not a listen to
// chart (spotify.go says why each).
const (
	SkipEpisode    Reason = "podcast_episode"
	SkipAudiobook  Reason = "audiobook"
	SkipNoMetadata Reason = "no_track_metadata"
	SkipTooShort   Reason = "too_short"
	SkipIncognito  Reason = "incognito"
)

// Reasons a record is refused: it is broken, or the contract refuses the
// listen it maps to (then the contract's listen.Reason: played_at out of
// range, a name too long or empty, …).
const (
	// RefuseBadRecord: not an object, or a field of a type the format
	// does not have (ms_played a string, track_metadata an array, …).
	RefuseBadRecord Reason = "bad_record"
	// RefuseNotJSON: a line of a JSON lines file that is not JSON.
	RefuseNotJSON Reason = "not_json"
	// RefuseBadTime: ts missing or not a date and time, listened_at
	// missing or not a number.
	RefuseBadTime Reason = "bad_time"
	// RefuseBadMSPlayed: ms_played missing, negative or not an integer.
	RefuseBadMSPlayed Reason = "bad_ms_played"
	// RefuseTooLarge: a line over Options.MaxLineBytes, or a listen whose
	// record is over listen.MaxRecordBytes (ingest would refuse it).
	RefuseTooLarge = Reason(listen.ReasonTooLarge)
)

// Example is one refused record: its index in the file and why.
type Example struct {
	Index  int    `json:"index"`
	Detail string `json:"detail"`
}

// Report is what Read read, file by file.
type Report struct {
	Name    string // the name given to Read
	Archive bool   // Name is a zip archive
	// Files has one FileReport per file read, ignored or passed over, in
	// the archive's order (one for a single file).
	Files []*FileReport
}

// FileReport counts the records of one file. Read = Accepted + the sum of
// Skipped + the sum of Refused.
type FileReport struct {
	File   string `json:"file"`
	Format Format `json:"format,omitempty"` // "" when not read as a history
	// Ignored says why a member of an archive was not read as a history
	// (a PDF, ListenBrainz's user.json or feedback, a folder): not an
	// error. For a single file, Read returns it as a *FormatError.
	Ignored string `json:"ignored,omitempty"`
	// Passed: the file lies wholly before Options.After; it was not
	// opened.
	Passed bool `json:"passed,omitempty"`
	// Resumed counts the records of the file passed over up to and
	// including Options.After.
	Resumed  int                  `json:"resumed,omitempty"`
	Read     int                  `json:"read"`
	Accepted int                  `json:"accepted"`
	Skipped  map[Reason]int       `json:"skipped,omitempty"`
	Refused  map[Reason]int       `json:"refused,omitempty"`
	Examples map[Reason][]Example `json:"examples,omitempty"`
	// Err is set when the file could not be read to its end.
	Err *FileError `json:"-"`
}

func (f *FileReport) skip(r Reason) {
	if f.Skipped == nil {
		f.Skipped = map[Reason]int{}
	}
	f.Skipped[r]++
}

func (f *FileReport) refuse(r Reason, index int, detail string, max int) {
	if f.Refused == nil {
		f.Refused = map[Reason]int{}
	}
	f.Refused[r]++
	if len(f.Examples[r]) < max {
		if f.Examples == nil {
			f.Examples = map[Reason][]Example{}
		}
		f.Examples[r] = append(f.Examples[r], Example{Index: index, Detail: detail})
	}
}

// Totals sums the files' counts (Resumed, Read, Accepted, Skipped and
// Refused per reason); its File is the report's Name.
func (r *Report) Totals() FileReport {
	t := FileReport{File: r.Name}
	for _, f := range r.Files {
		t.Resumed += f.Resumed
		t.Read += f.Read
		t.Accepted += f.Accepted
		for k, v := range f.Skipped {
			if t.Skipped == nil {
				t.Skipped = map[Reason]int{}
			}
			t.Skipped[k] += v
		}
		for k, v := range f.Refused {
			if t.Refused == nil {
				t.Refused = map[Reason]int{}
			}
			t.Refused[k] += v
		}
	}
	return t
}

// File returns the report of the named file, or nil.
func (r *Report) File(name string) *FileReport {
	i := slices.IndexFunc(r.Files, func(f *FileReport) bool { return f.File == name })
	if i < 0 {
		return nil
	}
	return r.Files[i]
}
