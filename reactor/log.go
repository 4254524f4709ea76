package reactor

import (
	"context"
	"fmt"
	"log/slog"
)

// gnetLogger adapts gnet's logging.Logger to slog. gnet installs it as its
// process-wide default logger too (gnet's choice), so with several reactors
// gnet's global messages go to the last one started.
type gnetLogger struct{ l *slog.Logger }

func newGnetLogger(l *slog.Logger) gnetLogger { return gnetLogger{l} }

func (g gnetLogger) logf(level slog.Level, format string, args []any) {
	ctx := context.Background()
	if !g.l.Enabled(ctx, level) {
		return
	}
	g.l.Log(ctx, level, "gnet: "+fmt.Sprintf(format, args...))
}

func (g gnetLogger) Debugf(format string, args ...any) { g.logf(slog.LevelDebug, format, args) }
func (g gnetLogger) Infof(format string, args ...any)  { g.logf(slog.LevelInfo, format, args) }
func (g gnetLogger) Warnf(format string, args ...any)  { g.logf(slog.LevelWarn, format, args) }
func (g gnetLogger) Errorf(format string, args ...any) { g.logf(slog.LevelError, format, args) }

// Fatalf logs at error level; unlike zap it does not exit the process.
func (g gnetLogger) Fatalf(format string, args ...any) { g.logf(slog.LevelError, format, args) }
