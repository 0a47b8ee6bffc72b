package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/topk-charts/topk"
	"github.com/topk-charts/topk/imports"
	"github.com/topk-charts/topk/imports/uploads"
	"github.com/topk-charts/topk/internal/importfixture"
	"github.com/topk-charts/topk/listen"
)

// memImports is an in-memory uploads.Store.
type memImports struct {
	mu   sync.Mutex
	rows map[string]uploads.Status
}

func (m *memImports) InsertImport(_ context.Context, s uploads.Status, _, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rows == nil {
		m.rows = map[string]uploads.Status{}
	}
	m.rows[s.ID] = s
	return nil
}

func (m *memImports) UpdateImport(_ context.Context, s uploads.Status, _ *imports.Position) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rows[s.ID] = s
	return nil
}

func (m *memImports) Import(_ context.Context, user, id string) (uploads.Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.rows[id]
	if !ok || s.UserID != user {
		return s, topk.NotFound("id", "no such import")
	}
	return s, nil
}

func (m *memImports) UnfinishedImports(context.Context, string) ([]uploads.Unfinished, error) {
	return nil, nil
}

// sentRecords keeps what an import sent.
type sentRecords struct {
	mu   sync.Mutex
	msgs []*sarama.ProducerMessage
}

func (s *sentRecords) Send(_ context.Context, msgs []*sarama.ProducerMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, msgs...)
	return nil
}

type importsFixture struct {
	*fixture
	runner *uploads.Runner
	sent   *sentRecords
}

const importsAdmin = "admin-token-0123456789"

func newImportsFixture(t *testing.T, maxBytes int64) *importsFixture {
	t.Helper()
	f := &importsFixture{fixture: newFixture(t, fixtureOpts{}), sent: &sentRecords{}}
	r, err := uploads.New(uploads.Config{Store: &memImports{}, Producer: f.sent, Topics: listen.NewTopics("t"), Dir: t.TempDir(), Host: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	f.runner = r
	f.srv.MountImports(ImportsConfig{Importer: r, Tokens: lbTokens{aliceToken: "alice"}, AdminToken: importsAdmin, MaxBytes: maxBytes})
	return f
}

// post sends body to path with the headers (name, value pairs).
func (f *importsFixture) post(path string, body io.Reader, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, body)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	f.srv.Echo().ServeHTTP(rec, req)
	return rec
}

func multipartBody(t *testing.T, name string, data []byte) (*bytes.Buffer, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	_ = w.WriteField("note", "before the file")
	part, err := w.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	part.Write(data)
	w.Close()
	return &b, w.FormDataContentType()
}

// waitDone polls the status until the import is not running.
func (f *importsFixture) waitDone(t *testing.T, loc string, header ...string) uploads.Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		req := httptest.NewRequest(http.MethodGet, loc, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		f.srv.Echo().ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", loc, rec.Code, rec.Body)
		}
		var st uploads.Status
		if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
			t.Fatal(err)
		}
		if st.State != uploads.StateRunning {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("import still running: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestImportUpload(t *testing.T) {
	f := newImportsFixture(t, 1<<20)
	data, exp := importfixture.Spotify(false)
	body, ct := multipartBody(t, "my_spotify_data.zip", data)
	rec := f.post("/v1/users/alice/imports", body, "Content-Type", ct, "Authorization", "Token "+aliceToken)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("upload: %d %s", rec.Code, rec.Body)
	}
	var started ImportStarted
	if err := json.Unmarshal(rec.Body.Bytes(), &started); err != nil {
		t.Fatal(err)
	}
	if started.ID == "" || started.File != "my_spotify_data.zip" || started.Bytes != int64(len(data)) || rec.Header().Get("Location") != started.StatusURL {
		t.Fatalf("answer %+v, Location %q", started, rec.Header().Get("Location"))
	}
	st := f.waitDone(t, started.StatusURL, "Authorization", "Token "+aliceToken)
	refused := 0
	for _, fl := range exp.Files {
		for _, n := range fl.Refused {
			refused += n
		}
	}
	if st.State != uploads.StateDone || st.Counts.Accepted != len(exp.Listens()) || st.Counts.Sent != len(exp.Listens()) ||
		st.Counts.Refused != refused || st.Counts.DeadLetters != refused || st.Counts.FilesDone != st.Counts.Files || st.Finished == nil {
		t.Fatalf("status %+v", st)
	}
	if n := len(f.sent.msgs); n != len(exp.Listens())+refused {
		t.Errorf("%d records sent, want %d", n, len(exp.Listens())+refused)
	}
	// The admin token may read it; another user's token may not; an
	// unknown id is a 404.
	f.waitDone(t, started.StatusURL, "Authorization", "Bearer "+importsAdmin)
	rec = f.doFrom(started.StatusURL, "192.0.2.1:1", "Authorization", "Token nope")
	if rec.Code != http.StatusUnauthorized || errorCode(t, rec.Body.String()) != CodeUnauthorized {
		t.Errorf("wrong token: %d %s", rec.Code, rec.Body)
	}
	rec = f.doFrom("/v1/users/alice/imports/0000000000000000", "192.0.2.1:1", "Authorization", "Token "+aliceToken)
	if rec.Code != http.StatusNotFound {
		t.Errorf("unknown id: %d %s", rec.Code, rec.Body)
	}
}

// The raw body works too, with the admin token for any user; its name
// comes from ?name=.
func TestImportUploadRawBody(t *testing.T) {
	f := newImportsFixture(t, 1<<20)
	data, _ := importfixture.SpotifyFile()
	rec := f.post("/v1/users/bob/imports?name=Streaming_History_Audio_2019.json", bytes.NewReader(data), "Content-Type", "application/json", "Authorization", "Bearer "+importsAdmin)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("upload: %d %s", rec.Code, rec.Body)
	}
	var started ImportStarted
	_ = json.Unmarshal(rec.Body.Bytes(), &started)
	st := f.waitDone(t, started.StatusURL, "Authorization", "Bearer "+importsAdmin)
	if st.State != uploads.StateDone || st.UserID != "bob" || st.File != "Streaming_History_Audio_2019.json" || st.Counts.Sent == 0 {
		t.Errorf("status %+v", st)
	}
}

func TestImportUploadRefusals(t *testing.T) {
	f := newImportsFixture(t, 64<<10)
	good, _ := importfixture.Spotify(false)
	big := bytes.Repeat([]byte(" "), 100<<10)
	for _, tc := range []struct {
		name   string
		path   string
		body   func() (io.Reader, string)
		auth   string
		status int
		code   Code
	}{
		{"no token", "/v1/users/alice/imports", func() (io.Reader, string) { return bytes.NewReader(good), "application/zip" }, "", 401, CodeUnauthorized},
		{"wrong token", "/v1/users/alice/imports", func() (io.Reader, string) { return bytes.NewReader(good), "application/zip" }, "Token 00000000-0000-4000-8000-000000000000", 401, CodeUnauthorized},
		{"another user's token", "/v1/users/bob/imports", func() (io.Reader, string) { return bytes.NewReader(good), "application/zip" }, "Token " + aliceToken, 403, CodeForbidden},
		{"over the size limit", "/v1/users/alice/imports", func() (io.Reader, string) { return bytes.NewReader(big), "application/json" }, "Token " + aliceToken, 413, CodeTooLarge},
		{"over the size limit, multipart", "/v1/users/alice/imports", func() (io.Reader, string) {
			b, ct := multipartBody(t, "x.json", big)
			return b, ct
		}, "Token " + aliceToken, 413, CodeTooLarge},
		{"zip bomb", "/v1/users/alice/imports", func() (io.Reader, string) { return bytes.NewReader(importfixture.DeclaredBomb()), "application/zip" }, "Token " + aliceToken, 413, CodeTooLarge},
		{"not a history", "/v1/users/alice/imports", func() (io.Reader, string) { return strings.NewReader("%PDF-1.4 hello"), "application/pdf" }, "Token " + aliceToken, 415, CodeUnsupported},
		{"empty", "/v1/users/alice/imports", func() (io.Reader, string) { return strings.NewReader(""), "application/zip" }, "Token " + aliceToken, 400, CodeInvalid},
		{"multipart without file", "/v1/users/alice/imports", func() (io.Reader, string) {
			var b bytes.Buffer
			w := multipart.NewWriter(&b)
			_ = w.WriteField("x", "y")
			w.Close()
			return &b, w.FormDataContentType()
		}, "Token " + aliceToken, 400, CodeInvalid},
	} {
		body, ct := tc.body()
		rec := f.post(tc.path, body, "Content-Type", ct, "Authorization", tc.auth)
		if rec.Code != tc.status || errorCode(t, rec.Body.String()) != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, rec.Code, rec.Body, tc.status, tc.code)
		}
	}
	// Nothing was kept or sent.
	if n := len(f.sent.msgs); n != 0 {
		t.Errorf("%d records sent", n)
	}
	left, _ := os.ReadDir(f.runner.Dir())
	if len(left) != 0 {
		t.Errorf("spool folder holds %d files: %v", len(left), fmt.Sprint(left))
	}
}
