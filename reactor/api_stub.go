package reactor

// STUB FILE: fixes reactor's public API so other packages compile; the
// implementation replaces this file entirely (keep every signature).

import (
	"context"
	"log/slog"
	"net"
	"time"
)

// Config tunes a Reactor. The zero value means all defaults.
type Config struct {
	// Loops is the number of event loops. Zero means GOMAXPROCS.
	Loops int
	// ReadBufferCap is the per-loop read buffer in bytes. Zero means 256 KiB.
	ReadBufferCap int
	// HighWater is the outbound byte count (gnet's buffer plus our queue) at
	// which a connection stops being writable. Zero means 4 MiB.
	HighWater int
	// LowWater is the outbound byte count at or below which a stalled
	// connection becomes writable again (OnWritable). Zero means 1 MiB.
	LowWater int
	// MaxQueued is the number of bytes Conn.Send may hold in its queue before
	// it blocks. Zero means 4 MiB.
	MaxQueued int
	// MaxInbound is the number of received bytes a handler may leave
	// unconsumed; beyond it the connection closes with ErrInboundOverflow.
	// Zero means 1 MiB.
	MaxInbound int
	// StallPoll is how often a loop rechecks stalled connections. Zero means
	// 1 ms.
	StallPoll time.Duration
	// DialTimeout bounds Dial when its context has no earlier deadline. Zero
	// means 10 s.
	DialTimeout time.Duration
	// Logger receives reactor logs; nil discards them.
	Logger *slog.Logger
}

// Handler receives a reactor's connection events. Every method runs on the
// connection's event loop and must not block.
type Handler interface {
	// OnOpen runs once, when the connection is registered on its loop.
	OnOpen(c *Conn)
	// OnData runs with the bytes received and not yet consumed; data is valid
	// only during the call. It returns how many leading bytes it consumed; the
	// rest is presented again, followed by newer bytes, on the next call.
	OnData(c *Conn, data []byte) (consumed int)
	// OnWritable runs when a connection whose Writable returned false has
	// drained to LowWater.
	OnWritable(c *Conn)
	// OnWake runs after one or more Wake calls (coalesced).
	OnWake(c *Conn)
	// OnClose runs once, last; the connection must not be used afterwards.
	OnClose(c *Conn, err error)
}

// Reactor is one gnet engine that listens and dials.
type Reactor struct{ stub int }

// New returns a reactor that is not yet running.
func New(cfg Config, h Handler) (*Reactor, error) { panic("stub") }

// Start runs the engine, listening on addr ("host:port"; "" means a private
// 127.0.0.1:0 listener used only so that dialed connections can be
// registered). It returns once the loops are ready.
func (r *Reactor) Start(addr string) error { panic("stub") }

// Addr returns the listener's address once started.
func (r *Reactor) Addr() net.Addr { panic("stub") }

// Dial connects to addr ("host:port") off the loops, with the context's
// deadline or DialTimeout, registers the socket on a loop and returns after
// OnOpen has run. data is available through Conn.Data in OnOpen. Dial must
// not be called from an event loop.
func (r *Reactor) Dial(ctx context.Context, addr string, data any) (*Conn, error) { panic("stub") }

// Stop closes every connection (OnClose runs for each) and the engine.
func (r *Reactor) Stop(ctx context.Context) error { panic("stub") }

// Conn is one connection owned by one event loop.
//
// Any-goroutine methods: ID, Data, Dialed, LocalAddr, RemoteAddr, Send,
// Execute, Wake, Close, Abort. All others are loop-only: call them only from
// Handler methods, Execute functions or loop timers of this connection.
type Conn struct{ stub int }

// ID is unique per reactor.
func (c *Conn) ID() uint64 { panic("stub") }

// Data returns the value given to Dial, or set by SetData.
func (c *Conn) Data() any { panic("stub") }

// SetData sets the value returned by Data. Loop-only; call it in OnOpen.
func (c *Conn) SetData(v any) { panic("stub") }

// Dialed reports whether the connection came from Dial.
func (c *Conn) Dialed() bool { panic("stub") }

// LocalAddr and RemoteAddr are captured at open.
func (c *Conn) LocalAddr() string  { panic("stub") }
func (c *Conn) RemoteAddr() string { panic("stub") }

// Loop returns the connection's event loop.
func (c *Conn) Loop() *Loop { panic("stub") }

// Write writes bufs in order (loop-only). The bytes are copied or written
// before it returns, so bufs may be reused. It never blocks; check Writable
// to apply back-pressure. After close it returns ErrClosed and writes nothing.
func (c *Conn) Write(bufs ...[]byte) error { panic("stub") }

// Writable reports whether outbound bytes are below HighWater (loop-only).
// When it returns false, OnWritable follows once they drain to LowWater.
func (c *Conn) Writable() bool { panic("stub") }

// Closed reports whether the connection is closing or closed (loop-only).
func (c *Conn) Closed() bool { panic("stub") }

// Send queues b to be written after everything sent before it, from any
// goroutine. It blocks while more than MaxQueued bytes are queued, until ctx
// ends or the connection closes. b must not be modified after Send returns.
func (c *Conn) Send(ctx context.Context, b []byte) error { panic("stub") }

// Execute runs fn on the connection's loop, in order with Send and other
// Execute calls. It returns ErrClosed if the connection is closed.
func (c *Conn) Execute(fn func()) error { panic("stub") }

// Wake schedules one OnWake call (calls coalesce). Any goroutine; cheap.
func (c *Conn) Wake() { panic("stub") }

// Close closes gracefully: queued and buffered output drains first, then
// the socket closes and OnClose gets err (nil means ErrClosed... see docs).
func (c *Conn) Close(err error) { panic("stub") }

// Abort closes at once, dropping pending output.
func (c *Conn) Abort(err error) { panic("stub") }

// Loop is one event loop.
type Loop struct{ stub int }

// Timer is a loop timer.
type Timer struct{ stub int }

// AfterFunc runs fn on the loop after d (loop-only).
func (l *Loop) AfterFunc(d time.Duration, fn func()) *Timer { panic("stub") }

// Stop cancels the timer (loop-only); it reports whether it was pending.
func (t *Timer) Stop() bool { panic("stub") }
