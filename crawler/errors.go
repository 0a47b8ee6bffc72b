package crawler

import (
	"errors"
	"fmt"

	"github.com/topk-charts/topk"
)

// Errors of the control plane; the api maps them to HTTP statuses. The
// stores that implement this package's ports (store/postgres) return them.
var (
	// ErrNotFound: no such user. errors.Is matches it and topk.ErrNotFound.
	ErrNotFound error = &kindError{msg: "no such user", kind: topk.ErrNotFound}
	ErrExists         = errors.New("user already exists")
	ErrBusy           = errors.New("a crawl of this user is running")
)

// kindError is an error of this package with its own message that is also
// a domain error (topk.ErrNotFound, ...) for errors.Is.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// InvalidError is bad input, naming the field at fault. errors.Is matches
// it with topk.ErrInvalid.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

// Unwrap makes an InvalidError a topk.ErrInvalid.
func (e *InvalidError) Unwrap() error { return topk.ErrInvalid }

func invalidf(field, format string, args ...any) error {
	return &InvalidError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// errLeaseLost: the user was deleted (or the lease taken over) mid-crawl.
var errLeaseLost = errors.New("crawl lease lost (user deleted or rescheduled)")
