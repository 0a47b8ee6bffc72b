package ops

import (
	"io"
	"log/slog"
)

// LevelStatus is the level of a service's status line (StatusReporter):
// above info and below warn, so a terminal that shows only warnings and
// errors (NewSplitLogger) still shows it. Handlers print it as STATUS.
const LevelStatus = slog.LevelInfo + 2

// NewSplitLogger is the logger of a service whose whole log goes to a
// file (TOPK_LOG_FILE): file gets every record at level and above, as
// NewLogger would write it; terminal only status lines, warnings and
// errors, so the lines a person must see are not lost among a line per
// request and per crawl.
func NewSplitLogger(terminal, file io.Writer, level, format string) *slog.Logger {
	lv := parseLevel(level)
	return slog.New(slog.NewMultiHandler(handler(file, lv, format), handler(terminal, max(lv, LevelStatus), format)))
}

func handler(w io.Writer, level slog.Level, format string) slog.Handler {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: statusLevelName}
	if format == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// statusLevelName prints LevelStatus as STATUS instead of slog's INFO+2.
func statusLevelName(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.LevelKey {
		if lv, ok := a.Value.Any().(slog.Level); ok && lv == LevelStatus {
			return slog.String(slog.LevelKey, "STATUS")
		}
	}
	return a
}
