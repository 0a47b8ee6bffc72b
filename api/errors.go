package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/topk-charts/topk"
)

// Code classifies an error for the HTTP answer.
type Code string

// Error codes; StatusOf maps each to one HTTP status.
const (
	CodeInvalid      Code = "invalid"      // a bad parameter or body: 400
	CodeUnauthorized Code = "unauthorized" // missing or wrong credentials: 401
	CodeNotFound     Code = "not_found"    // 404
	CodeConflict     Code = "conflict"     // 409
	CodeRateLimited  Code = "rate_limited" // a client over its rate limit: 429
	CodeUnavailable  Code = "unavailable"  // a store is down and nothing else can answer: 503
	CodeInternal     Code = "internal"     // a bug: 500
)

// Error codes of routing and the browser UIs.
const (
	// CodeMethod: the path exists, the method does not: 405 (the Allow
	// header lists the methods it has).
	CodeMethod Code = "method_not_allowed"
	// CodeForbidden: refused whatever the credentials (a cross-origin
	// request to a browser UI), or credentials of another user: 403.
	CodeForbidden Code = "forbidden"
)

// Error codes of uploads.
const (
	// CodeTooLarge: an upload over the size limit, or an archive that
	// would inflate past its limits (a zip bomb): 413.
	CodeTooLarge Code = "too_large"
	// CodeUnsupported: an upload that is no history file topk reads: 415.
	CodeUnsupported Code = "unsupported_file"
)

// Error is an error with a code and, for bad input, the parameter at fault.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// Errorf builds an Error.
func Errorf(code Code, param, message string) *Error {
	return &Error{Code: code, Param: param, Message: message}
}

// StatusOf is the one place errors become HTTP statuses: the api's own
// coded errors, the domain's (topk.Error and the bare topk.ErrInvalid,
// ErrNotFound, ErrUnavailable, which the charts service and the stores
// wrap) and echo's.
func StatusOf(err error) (int, *Error) {
	var e *Error
	var de *topk.Error
	switch {
	case errors.As(err, &e):
	case errors.As(err, &de):
		e = &Error{Code: domainCode(de), Message: de.Message, Param: de.Param}
	case errors.Is(err, topk.ErrInvalid):
		e = &Error{Code: CodeInvalid, Message: err.Error()}
	case errors.Is(err, topk.ErrNotFound):
		e = &Error{Code: CodeNotFound, Message: err.Error()}
	case errors.Is(err, topk.ErrUnavailable):
		e = &Error{Code: CodeUnavailable, Message: "a store is unavailable and nothing else can answer"}
	}
	if e != nil {
		switch e.Code {
		case CodeInvalid:
			return http.StatusBadRequest, e
		case CodeUnauthorized:
			return http.StatusUnauthorized, e
		case CodeForbidden:
			return http.StatusForbidden, e
		case CodeNotFound:
			return http.StatusNotFound, e
		case CodeMethod:
			return http.StatusMethodNotAllowed, e
		case CodeConflict:
			return http.StatusConflict, e
		case CodeRateLimited:
			return http.StatusTooManyRequests, e
		case CodeTooLarge:
			return http.StatusRequestEntityTooLarge, e
		case CodeUnsupported:
			return http.StatusUnsupportedMediaType, e
		case CodeUnavailable:
			return http.StatusServiceUnavailable, e
		}
		return http.StatusInternalServerError, e
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code := CodeInternal
		switch {
		case he.Code == http.StatusNotFound:
			code = CodeNotFound
		case he.Code == http.StatusMethodNotAllowed:
			code = CodeMethod
		case he.Code == http.StatusUnauthorized:
			code = CodeUnauthorized
		case he.Code == http.StatusForbidden:
			code = CodeForbidden
		case he.Code >= 400 && he.Code < 500:
			code = CodeInvalid
		}
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok {
			msg = m
		}
		return he.Code, &Error{Code: code, Message: msg}
	}
	return http.StatusInternalServerError, &Error{Code: CodeInternal, Message: "internal error"}
}

// domainCode is the code of a domain error's kind.
func domainCode(e *topk.Error) Code {
	switch {
	case errors.Is(e.Kind, topk.ErrInvalid):
		return CodeInvalid
	case errors.Is(e.Kind, topk.ErrNotFound):
		return CodeNotFound
	case errors.Is(e.Kind, topk.ErrUnavailable):
		return CodeUnavailable
	}
	return CodeInternal
}

// errorHandler writes every error as {"error": {...}}, and those of the
// ListenBrainz routes (/1/…) as ListenBrainz does: {"code": status,
// "error": message}.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if strings.HasPrefix(c.Request().URL.Path, "/1/") {
		le := lbStatus(routeError(c, err), "")
		if le.Code >= 500 {
			s.log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
		}
		lbJSON(c, le)
		return
	}
	status, body := StatusOf(routeError(c, err))
	if status >= 500 {
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSON(status, map[string]*Error{"error": body})
}

// routeError names what echo's router did not find: the path (a 404), or
// the method on a path that has others (a 405; the router has set the
// Allow header, which the message repeats).
func routeError(c echo.Context, err error) error {
	r := c.Request()
	path := r.URL.EscapedPath()
	if len(path) > 200 {
		path = path[:200] + "…"
	}
	switch {
	case errors.Is(err, echo.ErrNotFound):
		return Errorf(CodeNotFound, "", "no such path: "+path)
	case errors.Is(err, echo.ErrMethodNotAllowed):
		return Errorf(CodeMethod, "", fmt.Sprintf("method %s is not allowed on %s (Allow: %s)",
			r.Method, path, c.Response().Header().Get(echo.HeaderAllow)))
	}
	return err
}

// wholeSegments makes a path whose segments are not the route's an
// unknown path: echo lets a route's last :param take the rest of the path,
// slashes included (/v1/users/:user matched /v1/users/alice/x). A user id
// with a slash still reaches its routes: its slash comes escaped (%2F),
// and echo routes on the escaped path.
func wholeSegments(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		route, path := c.Path(), c.Request().URL.EscapedPath()
		if route != "" && !strings.HasSuffix(route, "*") && strings.Count(route, "/") != strings.Count(path, "/") {
			c.SetPath("") // for the metrics: not a route's request
			return echo.ErrNotFound
		}
		return next(c)
	}
}
