package provider

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Provider fetches one user's listening history.
type Provider interface {
	// Crawl fetches the plays after cursor and hands them to emit in pages,
	// oldest page first and oldest play first within a page. Each page's
	// Cursor is the position to store once its plays are published; the
	// caller may stop the run by returning an error from emit, which Crawl
	// returns. Crawl returns on the first error; it never skips a page.
	Crawl(ctx context.Context, acct Account, cursor int64, emit func(context.Context, Page) error) (Result, error)
}

// Account is what a provider needs to crawl one user.
type Account struct {
	// UserID is topk's user id (the Kafka key of every listen).
	UserID string
	// ExternalID is the user at the provider: a Last.fm user name, a Spotify
	// user id, a simulated listener's name.
	ExternalID string
	// Tokens are the decrypted OAuth tokens (Spotify); empty otherwise.
	Tokens Tokens
	// SaveTokens stores refreshed tokens before the crawl goes on (a
	// provider may rotate the refresh token). Nil: tokens are not saved.
	SaveTokens func(context.Context, Tokens) error
}

// Tokens are OAuth tokens.
type Tokens struct {
	Access  string
	Refresh string
	Expiry  time.Time // zero: unknown
}

// Play is one listen as a provider reports it.
type Play struct {
	PlayedAt   time.Time
	Artist     string
	Track      string
	Album      string
	TrackID    string
	ArtistID   string
	AlbumID    string
	DurationMS int64
}

// Page is a batch of plays and the cursor that follows it.
type Page struct {
	Plays  []Play
	Cursor int64
	// Done and Total count the pages of this run when the provider knows
	// them (a first Last.fm import walks thousands): progress for the user's
	// status. Total is 0 when unknown.
	Done, Total int
}

// Result is what a run learnt besides its plays.
type Result struct {
	// PossibleGap: the provider returned as many new plays as it can return
	// at all (Spotify's last 50), so older ones may have been missed.
	PossibleGap bool
}

// PermanentError is a failure that retrying cannot fix (a private Last.fm
// profile, an unknown user, a revoked Spotify grant). The crawl task is not
// retried; the error shows in the user's status.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as not worth retrying.
func Permanent(err error) error { return &PermanentError{Err: err} }

// IsPermanent reports whether err (or an error it wraps) is permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// RetryAfterError is a failure the provider asked to retry after a delay
// (HTTP 429 with Retry-After longer than a provider waits in-process).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %v)", e.Err, e.After)
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter returns the delay a provider asked for, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var r *RetryAfterError
	if errors.As(err, &r) {
		return r.After, true
	}
	return 0, false
}

// Sleep waits d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// UserAgent identifies topk to providers (Last.fm asks for one).
const UserAgent = "topk/1.0 (+https://github.com/topk-charts/topk; listening charts crawler)"
