package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/topk-charts/topk/charts"
	"github.com/topk-charts/topk/imports"
	"github.com/topk-charts/topk/imports/uploads"
)

// Importer runs uploaded imports (imports/uploads.Runner implements it).
type Importer interface {
	// Dir is where an upload is spooled before Check and Start.
	Dir() string
	// Check tells whether the upload at path can be imported for user:
	// a *imports.LimitError (a zip bomb, an archive over the limits) or
	// *imports.FormatError (not a history file) or another error if not.
	Check(ctx context.Context, user, path, name string) error
	// Start records the import of the upload at path and runs it in the
	// background.
	Start(ctx context.Context, user, path, name string, size int64) (uploads.Status, error)
	// Get is user's import id (topk.ErrNotFound naming "id" if none).
	Get(ctx context.Context, user, id string) (uploads.Status, error)
}

// ImportsConfig wires the upload routes.
type ImportsConfig struct {
	Importer Importer
	// Tokens authenticates users' API tokens (Authorization: Token …).
	Tokens TokenAuthenticator
	// AdminToken (TOPK_ADMIN_TOKEN) may upload for any user
	// (Authorization: Bearer …).
	AdminToken string
	// MaxBytes bounds an upload (TOPK_IMPORT_MAX_BYTES).
	MaxBytes int64
	// UploadTimeout bounds reading an upload's body
	// (TOPK_IMPORT_UPLOAD_TIMEOUT), instead of the server's read timeout.
	UploadTimeout time.Duration
}

// ImportStarted is the answer of POST /v1/users/{user}/imports (202).
type ImportStarted struct {
	uploads.Status
	// StatusURL is where the import's progress is.
	StatusURL string `json:"status_url"`
}

// MountImports adds the history upload routes, behind the per-client
// rate limit:
//
//	POST /v1/users/{user}/imports       upload a history file (multipart field "file", or the raw body): 202 with the import's id
//	GET  /v1/users/{user}/imports/{id}  its state and counts
//
// Both need the user's API token (Authorization: Token …) or the admin
// token (Authorization: Bearer …).
func (s *Server) MountImports(cfg ImportsConfig) {
	if cfg.UploadTimeout <= 0 {
		cfg.UploadTimeout = 10 * time.Minute
	}
	h := &importsHandler{cfg: cfg, admin: newAdmin(AdminConfig{Token: cfg.AdminToken})}
	s.echo.POST("/v1/users/:user/imports", h.upload, s.rateLimit, h.auth)
	s.echo.GET("/v1/users/:user/imports/:id", h.get, s.rateLimit, h.auth)
}

type importsHandler struct {
	cfg   ImportsConfig
	admin *admin
}

// auth lets the user's own API token or the admin token through.
func (h *importsHandler) auth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		user := userParam(c)
		if err := charts.ValidUser(user); err != nil {
			return err
		}
		// As on the ListenBrainz routes, the word before the credential is
		// not checked: the admin token, else a user's token.
		_, cred, _ := strings.Cut(c.Request().Header.Get("Authorization"), " ")
		cred = strings.TrimSpace(cred)
		switch {
		case h.admin.matches(cred):
			return next(c)
		case cred != "" && h.cfg.Tokens != nil:
			owner, ok, err := h.cfg.Tokens.Authenticate(c.Request().Context(), cred)
			if err != nil {
				return Errorf(CodeUnavailable, "", "tokens cannot be checked right now")
			}
			if !ok {
				break
			}
			if owner != user {
				return Errorf(CodeForbidden, "user", fmt.Sprintf("this token is %q's, not %q's", owner, user))
			}
			return next(c)
		}
		c.Response().Header().Set("WWW-Authenticate", `Token realm="topk", Bearer realm="topk admin"`)
		return Errorf(CodeUnauthorized, "", "missing or wrong token: Authorization: Token <the user's API token> (or Bearer <the admin token>)")
	}
}

// upload spools the body (the multipart form's "file", or the whole body)
// to a file, checks it, and starts the import.
func (h *importsHandler) upload(c echo.Context) error {
	if h.cfg.Importer == nil {
		return Errorf(CodeUnavailable, "", "imports are not available on this api")
	}
	req := c.Request()
	user := userParam(c)
	rc := http.NewResponseController(c.Response().Writer)
	deadline := time.Now().Add(h.cfg.UploadTimeout)
	_ = rc.SetReadDeadline(deadline) // not every writer supports it (tests): the server's timeout stays
	_ = rc.SetWriteDeadline(deadline.Add(time.Minute))
	if req.ContentLength > h.cfg.MaxBytes {
		return tooLarge(h.cfg.MaxBytes)
	}
	body, name, err := uploadBody(req, h.cfg.MaxBytes)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(h.cfg.Importer.Dir(), "upload-*.part")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after Start it is gone already (moved)
	n, err := io.Copy(f, io.LimitReader(body, h.cfg.MaxBytes+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || n > h.cfg.MaxBytes:
		return tooLarge(h.cfg.MaxBytes)
	case err != nil:
		return Errorf(CodeInvalid, "file", "the upload did not arrive whole: "+err.Error())
	case n == 0:
		return Errorf(CodeInvalid, "file", "the upload is empty")
	}
	if err := h.cfg.Importer.Check(req.Context(), user, tmp, name); err != nil {
		var le *imports.LimitError
		var fe *imports.FormatError
		switch {
		case errors.As(err, &le):
			return Errorf(CodeTooLarge, "file", strings.TrimPrefix(le.Error(), "imports: "))
		case errors.As(err, &fe):
			return Errorf(CodeUnsupported, "file", strings.TrimPrefix(fe.Error(), "imports: "))
		case req.Context().Err() != nil:
			return err
		}
		return Errorf(CodeInvalid, "file", strings.TrimPrefix(err.Error(), "imports: "))
	}
	st, err := h.cfg.Importer.Start(req.Context(), user, tmp, name, n)
	if err != nil {
		return err
	}
	loc := "/v1/users/" + url.PathEscape(user) + "/imports/" + st.ID
	c.Response().Header().Set("Location", loc)
	return c.JSON(http.StatusAccepted, ImportStarted{Status: st, StatusURL: loc})
}

// uploadBody is the upload's bytes and file name: the "file" part of a
// multipart/form-data body (read as a stream, never into memory), or the
// whole body of any other type (its name from ?name= or "upload").
func uploadBody(req *http.Request, max int64) (io.Reader, string, error) {
	req.Body = http.MaxBytesReader(nil, req.Body, max+64<<10) // + the multipart framing
	name := path.Base(req.URL.Query().Get("name"))
	if name == "." || name == "/" {
		name = "upload"
	}
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return req.Body, name, nil
	}
	mr, err := req.MultipartReader()
	if err != nil {
		return nil, "", Errorf(CodeInvalid, "file", "a multipart body without a boundary: "+err.Error())
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, "", Errorf(CodeInvalid, "file", `the multipart body has no part named "file"`)
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, "", tooLarge(max)
			}
			return nil, "", Errorf(CodeInvalid, "file", "a damaged multipart body: "+err.Error())
		}
		if part.FormName() == "file" {
			if fn := path.Base(part.FileName()); fn != "." && fn != "/" && fn != "" {
				name = fn
			}
			return part, name, nil
		}
	}
}

func tooLarge(max int64) error {
	return Errorf(CodeTooLarge, "file", fmt.Sprintf("the upload is over the limit of %d bytes (TOPK_IMPORT_MAX_BYTES)", max))
}

func (h *importsHandler) get(c echo.Context) error {
	if h.cfg.Importer == nil {
		return Errorf(CodeUnavailable, "", "imports are not available on this api")
	}
	st, err := h.cfg.Importer.Get(c.Request().Context(), userParam(c), c.Param("id"))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, st)
}
