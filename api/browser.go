package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/topk-charts/topk/ops"
)

// The browser UIs: the charts page at /, and the operators' asynqmon
// (/asynq/) and Goka monitor (/goka/). None of them may be framed by
// another page (denyFraming); the operators' UIs sit behind basic auth,
// which a browser then sends with every request to them, also with one a
// page of another site makes it send, so a request that changes
// something must come from a page of the api's own origin (sameOrigin).

// mountUI serves a browser UI under prefix (which the UI's handler is
// rooted at) and redirects prefix to prefix/: any method and sub-path,
// not framed, behind the admin's basic auth, state-changing requests from
// the same origin only.
func (s *Server) mountUI(prefix string, ui http.Handler, a *admin) {
	mw := []echo.MiddlewareFunc{denyFraming, a.basic, sameOrigin}
	s.echo.Any(prefix, func(c echo.Context) error {
		return c.Redirect(http.StatusMovedPermanently, prefix+"/")
	}, mw...)
	s.echo.Any(prefix+"/*", echo.WrapHandler(ui), mw...)
}

// denyFraming sets ops.DenyFraming's headers (X-Frame-Options: DENY, CSP
// frame-ancestors 'none') on every answer, errors included.
func denyFraming(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ops.DenyFraming(c.Response().Header())
		return next(c)
	}
}

// sameOrigin refuses a state-changing request (any method but GET, HEAD
// and OPTIONS) that does not show it comes from a page of the api's own
// origin, with a 403 naming the reason (crossOrigin).
func sameOrigin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if reason := crossOrigin(c.Request()); reason != "" {
			return Errorf(CodeForbidden, "", reason)
		}
		return next(c)
	}
}

// crossOrigin is why r may not change anything, or "" when it may: safe
// methods may; otherwise Sec-Fetch-Site, when sent, must be same-origin
// (or none: the user's own navigation), and the host of Origin, else of
// Referer, must be the request's Host. Browsers send Origin with every
// POST, PUT, PATCH and DELETE (asynqmon's own page passes); a request
// with neither header is refused too, so a script must set Origin:
// http://<the api's host>. The comparison is by host and port, not
// scheme (TLS may end at a proxy, which must keep the Host header).
func crossOrigin(r *http.Request) string {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return ""
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return fmt.Sprintf("cross-origin request refused: Sec-Fetch-Site is %.40q; a %s here must come from this UI's own pages", site, r.Method)
	}
	header, from := "Origin", r.Header.Get("Origin")
	if from == "" {
		header, from = "Referer", r.Header.Get("Referer")
	}
	if from == "" {
		return fmt.Sprintf("cross-origin check: a %s here needs an Origin or Referer header of this host (%.100s)", r.Method, r.Host)
	}
	u, err := url.Parse(from)
	if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
		return fmt.Sprintf("cross-origin request refused: %s %.100q is not this host (%.100s)", header, from, r.Host)
	}
	return ""
}
