package topk

// Error is a domain error with a message for the caller and, for bad
// input, the parameter at fault. errors.Is matches its Kind (ErrInvalid,
// ErrNotFound or ErrUnavailable) and its Cause; the api shows Message and
// Param, never the cause.
type Error struct {
	Kind    error
	Param   string
	Message string
	// Cause is what went wrong underneath (a store's error), for logs.
	Cause error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Message + ": " + e.Cause.Error()
	}
	return e.Message
}

// Unwrap gives Kind and Cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Cause}
}

// Invalid is an ErrInvalid about param.
func Invalid(param, message string) *Error {
	return &Error{Kind: ErrInvalid, Param: param, Message: message}
}

// NotFound is an ErrNotFound; param names what was not found when it
// was a parameter.
func NotFound(param, message string) *Error {
	return &Error{Kind: ErrNotFound, Param: param, Message: message}
}

// Unavailable is an ErrUnavailable caused by cause.
func Unavailable(message string, cause error) *Error {
	return &Error{Kind: ErrUnavailable, Message: message, Cause: cause}
}
