package api

import (
	_ "embed"
	"net/http"

	"github.com/topk-charts/topk/ops"
)

// OpenAPI is the api's description, served at /openapi.yaml. A test walks
// the server's routes and checks each is described.
//
//go:embed openapi.yaml
var OpenAPI []byte

// MountMonitor serves Goka's monitor (ops.GokaMonitor, rooted at /goka)
// under /goka/ as a browser UI (browser.go): behind basic auth, user
// admin, password token (TOPK_ADMIN_TOKEN; empty: every request is
// refused).
func (s *Server) MountMonitor(monitor http.Handler, token string) {
	s.mountUI(ops.GokaPrefix, monitor, newAdmin(AdminConfig{Token: token}))
}
