package ipc

import (
	"context"
	"log/slog"
	"runtime"
	"time"
)

// Logging.
//
// The service logs to Config.Logger (nil discards everything). Every
// record about a connection carries the same attributes, so that one
// connection's story can be filtered out of a busy log:
//
//	conn   uint64  the connection's ID (ConnInfo.ID, ConnStats.ID)
//	peer   string  the remote address
//	side   string  "accepted" or "dialed"
//	pool   string  the destination name (dialed connections only)
//
// and, where they apply, err (the error), cause (a close's class, as in
// ConnectionCounts: "local", "peer", "timeout", "protocol", "other") and
// event (a pool event's kind, PoolEventKind.String).
//
// Events, by level:
//
//	Debug  ipc: connection opened            each connection that opens
//	Debug  ipc: connection closed            closed locally or by the peer
//	Info   ipc: connection closed            closed by a timer (inactivity,
//	                                         dead peer, first packet), a
//	                                         protocol violation or another error
//	Debug  ipc: pool ...                     pool connection starts, activations, stops
//	Warn   ipc: pool connect failed          each failed connection attempt
//	Info   ipc: pool disconnected, closed    a pool lost its last connection; a pool closed
//	Info   ipc: TLS handshake failed         an accepted connection's handshake
//	Warn   reactor: accepted-connection limit reached
//	                                         once each time MaxAcceptedConnections is reached
//	Debug  reactor: connection rejected      each connection closed at the limit
//
// plus Debug records for rarer events (reading paused and resumed,
// connection retired, a message with no handler). Nothing is logged per
// message in steady state; the level is checked before a record is built,
// so a disabled level costs no allocation.

// Attribute keys of the service's log records.
const (
	logConn  = "conn"
	logPeer  = "peer"
	logSide  = "side"
	logPool  = "pool"
	logErr   = "err"
	logCause = "cause"
	logEvent = "event"
)

// connLog logs about one connection, adding its attributes (conn, peer,
// side, pool) to every record. It holds no state of its own: a connection
// pays no memory for logging.
type connLog struct{ c *conn }

// Debug and Info log msg at their level with args (slog's key-value
// pairs) after the connection's attributes.
func (l connLog) Debug(msg string, args ...any) { l.log(slog.LevelDebug, msg, args) }
func (l connLog) Info(msg string, args ...any)  { l.log(slog.LevelInfo, msg, args) }

// enabled reports whether level is logged (check it before building
// costly arguments).
func (l connLog) enabled(level slog.Level) bool {
	return l.c.svc.cfg.Logger.Enabled(context.Background(), level)
}

func (l connLog) log(level slog.Level, msg string, args []any) {
	lg := l.c.svc.cfg.Logger
	ctx := context.Background()
	if !lg.Enabled(ctx, level) {
		return
	}
	var pcs [1]uintptr
	runtime.Callers(3, pcs[:]) // the caller of Debug or Info
	r := slog.NewRecord(time.Now(), level, msg, pcs[0])
	c := l.c
	side := "accepted"
	if c.pool != nil {
		side = "dialed"
	}
	r.AddAttrs(slog.Uint64(logConn, c.id), slog.String(logPeer, c.remote), slog.String(logSide, side))
	if c.pool != nil {
		r.AddAttrs(slog.String(logPool, c.pool.name))
	}
	r.Add(args...)
	_ = lg.Handler().Handle(ctx, r)
}

// closeCauseNames name the close causes (stats.go) in log records.
var closeCauseNames = [closeCauses]string{
	closedLocal:    "local",
	closedByPeer:   "peer",
	closedTimeout:  "timeout",
	closedProtocol: "protocol",
	closedOther:    "other",
}

// logClosed logs a connection's close with its cause class k (stats.go).
func (c *conn) logClosed(k int, cause error) {
	level := slog.LevelInfo
	if k == closedLocal || k == closedByPeer {
		level = slog.LevelDebug
	}
	c.log.log(level, "ipc: connection closed", []any{slog.String(logCause, closeCauseNames[k]), slog.Any(logErr, cause)})
}

// logPoolEvent logs a pool event (pool.event).
func (p *pool) logPoolEvent(kind PoolEventKind, c *conn, err error) {
	lg := p.svc.cfg.Logger
	level := slog.LevelDebug
	msg := "ipc: pool " + kind.String()
	switch kind {
	case PoolConnectFailed:
		level, msg = slog.LevelWarn, "ipc: pool connect failed"
	case PoolDisconnected:
		level, msg = slog.LevelInfo, "ipc: pool disconnected"
	case PoolClosed:
		level, msg = slog.LevelInfo, "ipc: pool closed"
	}
	ctx := context.Background()
	if !lg.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 6)
	attrs = append(attrs, slog.String(logPool, p.name), slog.String(logEvent, kind.String()))
	if c != nil && c.rc != nil {
		attrs = append(attrs, slog.Uint64(logConn, c.id), slog.String(logPeer, c.remote), slog.String(logSide, "dialed"))
	}
	if err != nil {
		attrs = append(attrs, slog.Any(logErr, err))
	}
	lg.LogAttrs(ctx, level, msg, attrs...)
}
