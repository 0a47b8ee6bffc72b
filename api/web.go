package api

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// chartsPage is the charts page at /: plain HTML and script, embedded in the
// binary, no framework and no CDN. It reads the public endpoints only.
//
//go:embed web/index.html
var chartsPage []byte

func (s *Server) mountCharts() {
	s.echo.GET("/", func(c echo.Context) error {
		return c.Blob(http.StatusOK, "text/html; charset=utf-8", chartsPage)
	}, denyFraming)
}
