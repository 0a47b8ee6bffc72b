package crawler

import (
	"time"

	"github.com/topk-charts/topk/crawler/provider"
)

// The records the crawler's ports (UserStore, ScheduleStore, RunStore)
// carry. store/postgres keeps them in the tables of
// schemas/postgres/0002_crawler.sql.

// Schedule is a user's row in schedules, with their account and user rows.
type Schedule struct {
	UserID        string     `json:"-"`
	Active        bool       `json:"active"`
	Interval      Duration   `json:"interval"`
	NextRunAt     time.Time  `json:"next_run_at"`
	Cursor        int64      `json:"cursor"`
	LastRunAt     *time.Time `json:"last_run_at,omitempty"`
	LastStatus    string     `json:"last_status"`
	LastError     string     `json:"last_error,omitempty"`
	ArchivedTask  string     `json:"archived_task_id,omitempty"`
	RunningTask   string     `json:"running_task_id,omitempty"`
	RunningSince  *time.Time `json:"running_since,omitempty"`
	PagesDone     int        `json:"pages_done"`
	PagesTotal    int        `json:"pages_total"`
	ListensTotal  int64      `json:"listens_total"`
	PossibleGaps  int        `json:"possible_gaps"`
	LastGapAt     *time.Time `json:"last_gap_at,omitempty"`
	Provider      string     `json:"-"`
	ExternalID    string     `json:"-"`
	DisplayName   string     `json:"-"`
	UserCreatedAt time.Time  `json:"-"`
	HasTokens     bool       `json:"-"`
}

// Duration is a time.Duration written as "30m0s" in JSON.
type Duration time.Duration

// MarshalText writes the Go duration syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads the Go duration syntax.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Run is one crawl attempt.
type Run struct {
	ID          int64      `json:"id"`
	TaskID      string     `json:"task_id"`
	Attempt     int        `json:"attempt"`
	StartedAt   time.Time  `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	Listens     int        `json:"listens"`
	Outcome     string     `json:"outcome"`
	Error       string     `json:"error,omitempty"`
	PossibleGap bool       `json:"possible_gap,omitempty"`
}

// NewUser is a validated registration: the user, their provider account
// and their first schedule. Tokens are plaintext here; the store seals
// them (crawler/tokens) before they reach a table.
type NewUser struct {
	ID, DisplayName, Provider, ExternalID string
	Tokens                                provider.Tokens
	Interval                              time.Duration
	NextRunAt                             time.Time
}

// Claim is a crawl's lease on its user, granted when the task's slot is the
// user's next run and no other crawl holds a valid lease: the schedule, the
// opened tokens and the crawl_runs row of this attempt.
type Claim struct {
	Schedule
	Tokens provider.Tokens
	RunID  int64
}

// Progress is where a crawl stands after a page Kafka acknowledged.
type Progress struct {
	// Cursor is the provider's position after the page.
	Cursor int64
	// Listens the page published.
	Listens int
	// Done and Total count the run's pages (Total 0: unknown).
	Done, Total int
}

// Outcome is how a crawl attempt ended.
type Outcome struct {
	Status      string // ok, retrying, failed
	Err         string
	PossibleGap bool
	// Next is the next run's slot when the schedule moves on (ok, failed).
	Next time.Time
	// Archived is the id of the task Asynq archives (failed).
	Archived string
}
