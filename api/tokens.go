package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/charts"
)

// Tokens is what the token endpoints need of the store of users' API
// tokens, the credential of the ListenBrainz api (store/postgres
// implements it).
type Tokens interface {
	// CreateToken makes a token for user, creating the user if missing,
	// and returns it with its record: the only time the token is seen.
	// A bad user id is a topk.ErrInvalid naming "user".
	CreateToken(ctx context.Context, user string) (token string, info topk.TokenInfo, err error)
	// ListTokens lists user's tokens, revoked ones included, without the
	// tokens; empty for a user without any.
	ListTokens(ctx context.Context, user string) ([]topk.TokenInfo, error)
	// RevokeTokens revokes every valid token of user and returns how many.
	RevokeTokens(ctx context.Context, user string) (int, error)
	// RevokeToken revokes user's token id; a topk.ErrNotFound naming "id"
	// if user has no valid token with that id.
	RevokeToken(ctx context.Context, user string, id int64) error
}

// CreatedToken is the answer of POST /v1/admin/users/{user}/tokens and of
// `topk token create`: the token, shown this once, and its record.
type CreatedToken struct {
	Token string `json:"token"`
	topk.TokenInfo
}

// mountTokens adds the token endpoints (MountAdmin calls it; each route
// carries the Bearer check):
//
//	POST   /v1/admin/users/{user}/tokens       a new token (201; shown once)
//	GET    /v1/admin/users/{user}/tokens       the user's tokens, without the tokens
//	DELETE /v1/admin/users/{user}/tokens       revoke all the user's tokens ({"revoked": n})
//	DELETE /v1/admin/users/{user}/tokens/{id}  revoke one (204; 404 if not the user's valid token)
func (s *Server) mountTokens(a *admin) {
	h := &tokensHandler{store: a.cfg.Tokens}
	s.echo.POST("/v1/admin/users/:user/tokens", h.create, a.bearer)
	s.echo.GET("/v1/admin/users/:user/tokens", h.list, a.bearer)
	s.echo.DELETE("/v1/admin/users/:user/tokens", h.revokeAll, a.bearer)
	s.echo.DELETE("/v1/admin/users/:user/tokens/:id", h.revoke, a.bearer)
}

type tokensHandler struct {
	store Tokens
}

// tokenUser is the {user} of a token route, checked: the event contract's
// user id rules (the user's listens carry it) and no '/', like a
// registration; a bad one is a 400 naming user.
func tokenUser(c echo.Context) (string, error) {
	user := userParam(c)
	if err := charts.ValidUser(user); err != nil {
		return "", err
	}
	if strings.Contains(user, "/") {
		return "", topk.Invalid("user", "user must not contain '/'")
	}
	return user, nil
}

func (h *tokensHandler) create(c echo.Context) error {
	user, err := tokenUser(c)
	if err != nil {
		return err
	}
	token, info, err := h.store.CreateToken(c.Request().Context(), user)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store") // the answer holds a secret
	return c.JSON(http.StatusCreated, CreatedToken{Token: token, TokenInfo: info})
}

func (h *tokensHandler) list(c echo.Context) error {
	user, err := tokenUser(c)
	if err != nil {
		return err
	}
	list, err := h.store.ListTokens(c.Request().Context(), user)
	if err != nil {
		return err
	}
	if list == nil {
		list = []topk.TokenInfo{}
	}
	return c.JSON(http.StatusOK, map[string]any{"user_id": user, "tokens": list})
}

func (h *tokensHandler) revokeAll(c echo.Context) error {
	user, err := tokenUser(c)
	if err != nil {
		return err
	}
	n, err := h.store.RevokeTokens(c.Request().Context(), user)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]int{"revoked": n})
}

func (h *tokensHandler) revoke(c echo.Context) error {
	user, err := tokenUser(c)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		return topk.Invalid("id", "id must be a token id: a positive integer")
	}
	if err := h.store.RevokeToken(c.Request().Context(), user, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
