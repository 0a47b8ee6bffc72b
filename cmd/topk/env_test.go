package main

import (
	"bytes"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// With TOPK_LOG_FILE set, the api's line per request (TOPK_API_ACCESS_LOG
// at its default, info) goes to the file only, a warning to the terminal
// and the file; the file's folder is created. Without it, both are on the
// terminal as before.
func TestLogFileTakesRequestLines(t *testing.T) {
	for _, withFile := range []bool{true, false} {
		path := filepath.Join(t.TempDir(), "logs", "topk.log")
		if withFile {
			t.Setenv("TOPK_LOG_FILE", path)
		} else {
			t.Setenv("TOPK_LOG_FILE", "")
		}
		t.Setenv("TOPK_LOG_LEVEL", "info")
		t.Setenv("TOPK_API_ACCESS_LOG", "")
		var out, terminal bytes.Buffer
		env, err := LoadEnv(&out, &terminal)
		if err != nil {
			t.Fatal(err)
		}
		p, err := newAPI(env, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		p.srv.Echo().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		p.close()
		env.Log.Warn("kafka down: retrying")
		if err := env.Close(); err != nil {
			t.Fatal(err)
		}
		access := `level=INFO msg=http component=api method=GET uri=/healthz route=/healthz status=200`
		if !withFile {
			if !strings.Contains(terminal.String(), access) || !strings.Contains(terminal.String(), "level=WARN") {
				t.Errorf("without a file, the terminal lacks the request or the warning:\n%s", terminal.String())
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("without TOPK_LOG_FILE a file was written: %v", err)
			}
			continue
		}
		file, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(terminal.String(), "msg=http") || !strings.Contains(terminal.String(), `level=WARN msg="kafka down: retrying"`) {
			t.Errorf("terminal: want the warning and no request line:\n%s", terminal.String())
		}
		if !strings.Contains(string(file), access) || !strings.Contains(string(file), `level=WARN msg="kafka down: retrying"`) {
			t.Errorf("file: want the request line and the warning:\n%s", file)
		}
	}
}

// A log file that cannot be opened is a configuration error naming the
// variable.
func TestLogFileUnwritable(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TOPK_LOG_FILE", filepath.Join(dir, "file", "topk.log")) // its folder is a file
	var out, errb bytes.Buffer
	if code := Main(t.Context(), []string{"config"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "topk: configuration: TOPK_LOG_FILE: ") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}
