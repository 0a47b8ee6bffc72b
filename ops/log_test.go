package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// With the log in a file, the terminal shows status lines, warnings and
// errors; the per-request and per-crawl lines (info) and debug lines go to
// the file only, which has everything at the configured level.
func TestSplitLoggerRoutesByLevel(t *testing.T) {
	for _, level := range []string{"info", "debug"} {
		var term, file bytes.Buffer
		log := NewSplitLogger(&term, &file, level, "text").With("component", "x")
		ctx := context.Background()
		log.Info("http", "method", "GET", "uri", "/v1/users?prefix=a", "status", 200)
		log.Info("crawled", "user", "sim-0001", "listens", 12)
		log.Debug("a debug line")
		log.Log(ctx, LevelStatus, "status", "counted", 3)
		log.Warn("kafka down: retrying")
		log.Error("topk all failed", "err", "boom")

		terminal := term.String()
		for _, want := range []string{"level=STATUS msg=status component=x counted=3", "level=WARN msg=\"kafka down: retrying\"", "level=ERROR msg=\"topk all failed\""} {
			if !strings.Contains(terminal, want) {
				t.Errorf("level %s: the terminal lacks %q:\n%s", level, want, terminal)
			}
		}
		for _, not := range []string{"msg=http", "msg=crawled", "debug line"} {
			if strings.Contains(terminal, not) {
				t.Errorf("level %s: the terminal shows %q:\n%s", level, not, terminal)
			}
		}
		if n := strings.Count(terminal, "\n"); n != 3 {
			t.Errorf("level %s: %d terminal lines, want 3:\n%s", level, n, terminal)
		}
		written := file.String()
		for _, want := range []string{"level=INFO msg=http component=x method=GET", "level=INFO msg=crawled component=x user=sim-0001",
			"level=STATUS msg=status", "level=WARN", "level=ERROR"} {
			if !strings.Contains(written, want) {
				t.Errorf("level %s: the file lacks %q:\n%s", level, want, written)
			}
		}
		if got := strings.Contains(written, "debug line"); got != (level == "debug") {
			t.Errorf("level %s: debug line in the file: %v", level, got)
		}
	}
}

// TOPK_LOG_LEVEL=warn leaves status lines out of both; the logger without
// a file (NewLogger) shows status lines with the rest, as STATUS in JSON
// too.
func TestStatusLevel(t *testing.T) {
	var term, file bytes.Buffer
	NewSplitLogger(&term, &file, "warn", "text").Log(context.Background(), LevelStatus, "status")
	if term.Len()+file.Len() != 0 {
		t.Errorf("status at level warn: terminal %q, file %q", term.String(), file.String())
	}
	var out bytes.Buffer
	log := NewLogger(&out, "info", "json")
	log.Log(context.Background(), LevelStatus, "status", "counted", 3)
	log.Info("crawled")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %q", len(lines), out.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil || rec["level"] != "STATUS" || rec["counted"] != float64(3) {
		t.Errorf("json status line %s (%v)", lines[0], err)
	}
}
