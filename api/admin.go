package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/topk-charts/topk/crawler"
)

// Admin is what the admin endpoints need of the control plane
// (crawler.Control implements it).
type Admin interface {
	Register(ctx context.Context, r crawler.Registration) (crawler.UserStatus, error)
	Get(ctx context.Context, user string) (crawler.UserStatus, error)
	List(ctx context.Context, prefix, after string, limit int) ([]crawler.UserStatus, error)
	Delete(ctx context.Context, user string) error
	CrawlNow(ctx context.Context, user string) (crawler.UserStatus, error)
}

// AdminConfig configures the admin endpoints and the Asynq monitor.
type AdminConfig struct {
	// Token is TOPK_ADMIN_TOKEN: the Bearer token of the admin endpoints and
	// the password (user "admin") of the browser UIs. Empty: every admin
	// request is refused.
	Token string
	// Control is the control plane.
	Control Admin
	// Tokens is the store of users' API tokens (tokens.go); nil: the
	// token endpoints are not mounted.
	Tokens Tokens
	// Monitor is asynqmon's handler, built with root path /asynq; nil: not
	// mounted.
	Monitor http.Handler
}

// AdminUser is the basic-auth user of the browser UIs.
const AdminUser = "admin"

// MountAdmin adds the admin endpoints:
//
//	POST   /v1/users                 register a user with a provider account (201)
//	GET    /v1/admin/users           list users with schedule status (?prefix=&after=&limit=)
//	GET    /v1/admin/users/{user}    one user's status, task, archived task, runs
//	DELETE /v1/users/{user}          delete a user (204)
//	POST   /v1/users/{user}/crawl    crawl now (202; 409 while a crawl runs)
//	/v1/admin/users/{user}/tokens…   users' API tokens: create, list, revoke (tokens.go)
//	/asynq/                          asynqmon, a browser UI (browser.go)
//
// The list and get live under /v1/admin/ because GET /v1/users is the
// public user search of the charts page. Each route carries the Bearer
// check itself: echo's Group with middleware adds catch-all routes that
// run it, which with an empty prefix turned every unknown path into a 401.
func (s *Server) MountAdmin(cfg AdminConfig) {
	a := newAdmin(cfg)
	s.echo.POST("/v1/users", a.register, a.bearer)
	s.echo.GET("/v1/admin/users", a.list, a.bearer)
	s.echo.GET("/v1/admin/users/:user", a.get, a.bearer)
	s.echo.DELETE("/v1/users/:user", a.delete, a.bearer)
	s.echo.POST("/v1/users/:user/crawl", a.crawl, a.bearer)
	if cfg.Tokens != nil {
		s.mountTokens(a)
	}
	if cfg.Monitor != nil {
		s.mountUI("/asynq", cfg.Monitor, a)
	}
}

type admin struct {
	cfg      AdminConfig
	tokenSum [32]byte
}

func newAdmin(cfg AdminConfig) *admin {
	return &admin{cfg: cfg, tokenSum: sha256.Sum256([]byte(cfg.Token))}
}

// matches compares in constant time (hashing first hides the length).
func (a *admin) matches(given string) bool {
	if a.cfg.Token == "" {
		return false
	}
	sum := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) == 1
}

func (a *admin) disabled() error {
	return Errorf(CodeUnauthorized, "", "admin endpoints are disabled: TOPK_ADMIN_TOKEN is not set")
}

func (a *admin) bearer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.cfg.Token == "" {
			return a.disabled()
		}
		h := c.Request().Header.Get("Authorization")
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || !a.matches(strings.TrimSpace(token)) {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="topk admin"`)
			return Errorf(CodeUnauthorized, "", "missing or wrong admin token (Authorization: Bearer $TOPK_ADMIN_TOKEN)")
		}
		return next(c)
	}
}

func (a *admin) basic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.cfg.Token == "" {
			return a.disabled()
		}
		user, pass, ok := c.Request().BasicAuth()
		userOK := subtle.ConstantTimeCompare([]byte(user), []byte(AdminUser)) == 1
		if !ok || !a.matches(pass) || !userOK {
			c.Response().Header().Set("WWW-Authenticate", `Basic realm="topk", charset="UTF-8"`)
			return Errorf(CodeUnauthorized, "", "user admin, password TOPK_ADMIN_TOKEN")
		}
		return next(c)
	}
}

// adminError turns control-plane errors into api errors (StatusOf maps
// those to statuses).
func adminError(err error) error {
	var inv *crawler.InvalidError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &inv):
		return Errorf(CodeInvalid, inv.Field, inv.Error())
	case errors.Is(err, crawler.ErrNotFound):
		return Errorf(CodeNotFound, "user", err.Error())
	case errors.Is(err, crawler.ErrExists):
		return Errorf(CodeConflict, "user_id", err.Error())
	case errors.Is(err, crawler.ErrBusy):
		return Errorf(CodeConflict, "user", err.Error())
	}
	return err
}

func (a *admin) register(c echo.Context) error {
	var r crawler.Registration
	dec := json.NewDecoder(io.LimitReader(c.Request().Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Errorf(CodeInvalid, "body", fmt.Sprintf("not a registration JSON object: %v", err))
	}
	st, err := a.cfg.Control.Register(c.Request().Context(), r)
	if err != nil {
		return adminError(err)
	}
	return c.JSON(http.StatusCreated, st)
}

func (a *admin) list(c echo.Context) error {
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return Errorf(CodeInvalid, "limit", "limit must be 1–1000")
		}
		limit = n
	}
	users, err := a.cfg.Control.List(c.Request().Context(), c.QueryParam("prefix"), c.QueryParam("after"), limit)
	if err != nil {
		return adminError(err)
	}
	if users == nil {
		users = []crawler.UserStatus{}
	}
	body := map[string]any{"users": users}
	if len(users) == limit {
		body["next"] = users[len(users)-1].UserID // pass as ?after= for the next page
	}
	return c.JSON(http.StatusOK, body)
}

func (a *admin) get(c echo.Context) error {
	st, err := a.cfg.Control.Get(c.Request().Context(), userParam(c))
	if err != nil {
		return adminError(err)
	}
	return c.JSON(http.StatusOK, st)
}

func (a *admin) delete(c echo.Context) error {
	if err := a.cfg.Control.Delete(c.Request().Context(), userParam(c)); err != nil {
		return adminError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// userParam is the {user} path segment, unescaped.
func userParam(c echo.Context) string {
	if u, err := url.PathUnescape(c.Param("user")); err == nil {
		return u
	}
	return c.Param("user")
}

func (a *admin) crawl(c echo.Context) error {
	st, err := a.cfg.Control.CrawlNow(c.Request().Context(), userParam(c))
	if err != nil {
		return adminError(err)
	}
	return c.JSON(http.StatusAccepted, st)
}
