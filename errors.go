package topk

import "errors"

// The domain errors. Stores and services wrap them (fmt.Errorf with %w) so
// that callers decide with errors.Is, and the api maps each to one HTTP
// status in one place.
var (
	// ErrNotFound: no such user, token, import or other thing asked for.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: a store did not answer (down, connecting, timed
	// out) and nothing else can answer.
	ErrUnavailable = errors.New("unavailable")
	// ErrInvalid: the input is wrong (a bad parameter, range or body).
	ErrInvalid = errors.New("invalid")
)
