package api

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
)

// Code classifies an error for the HTTP answer.
type Code string

// Error codes; StatusOf maps each to one HTTP status.
const (
	CodeInvalid      Code = "invalid"      // a bad parameter or body: 400
	CodeUnauthorized Code = "unauthorized" // missing or wrong credentials: 401
	CodeNotFound     Code = "not_found"    // 404
	CodeConflict     Code = "conflict"     // 409
	CodeUnavailable  Code = "unavailable"  // a store is down and nothing else can answer: 503
	CodeInternal     Code = "internal"     // a bug: 500
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

// StatusOf is the one place errors become HTTP statuses.
func StatusOf(err error) (int, *Error) {
	var e *Error
	if errors.As(err, &e) {
		switch e.Code {
		case CodeInvalid:
			return http.StatusBadRequest, e
		case CodeUnauthorized:
			return http.StatusUnauthorized, e
		case CodeNotFound:
			return http.StatusNotFound, e
		case CodeConflict:
			return http.StatusConflict, e
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
			code = CodeInvalid
		case he.Code == http.StatusUnauthorized:
			code = CodeUnauthorized
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

// errorHandler writes every error as {"error": {...}}.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, body := StatusOf(err)
	if status >= 500 {
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSON(status, map[string]*Error{"error": body})
}
