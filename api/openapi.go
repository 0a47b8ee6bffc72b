package api

import (
	"crypto/sha256"
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// OpenAPI is the api's description, served at /openapi.yaml. A test walks
// the server's routes and checks each is described.
//
//go:embed openapi.yaml
var OpenAPI []byte

// MountMonitor serves Goka's monitor (ops.GokaMonitor, rooted at /goka)
// under /goka/ behind the browser UIs' basic auth: user admin, password
// token (TOPK_ADMIN_TOKEN; empty: every request is refused).
func (s *Server) MountMonitor(monitor http.Handler, token string) {
	a := &admin{cfg: AdminConfig{Token: token}, tokenSum: sha256.Sum256([]byte(token))}
	h := echo.WrapHandler(monitor)
	s.echo.Any("/goka", func(c echo.Context) error {
		return c.Redirect(http.StatusMovedPermanently, "/goka/")
	}, a.basic)
	s.echo.Any("/goka/*", h, a.basic)
}
