package reactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/ipcframe/ipcframe/internal/clock"
)

// Defaults applied to zero Config fields.
const (
	DefaultReadBufferCap = 256 << 10
	DefaultHighWater     = 4 << 20
	DefaultLowWater      = 1 << 20
	DefaultMaxQueued     = 4 << 20
	DefaultMaxInbound    = 1 << 20
	DefaultStallPoll     = time.Millisecond
	DefaultBusyPoll      = 50 * time.Microsecond
	DefaultDialTimeout   = 10 * time.Second
)

// pumpQuantum bounds the bytes one pump turn hands to gnet before it yields
// the loop to other connections.
const pumpQuantum = 1 << 20

// pumpMaxIov bounds the buffers handed to one gnet Writev call.
const pumpMaxIov = 64

// Config tunes a Reactor. The zero value means all defaults. New copies it;
// later changes to the caller's value have no effect.
type Config struct {
	// Loops is the number of event loops. Zero means GOMAXPROCS. Negative is
	// invalid.
	Loops int
	// ReadBufferCap is the per-loop read buffer in bytes: the most one read
	// system call (and so one OnData call) receives at once. gnet rounds it up
	// to a power of two. Zero means 256 KiB.
	ReadBufferCap int
	// HighWater is the outbound byte count (gnet's buffer plus our Send
	// queue) at which a connection stops being writable, and the gnet buffer
	// level at which the Send queue pump pauses. Zero means 4 MiB.
	HighWater int
	// LowWater is the gnet outbound byte count at or below which a stalled
	// connection becomes writable again (OnWritable) and its Send queue pump
	// resumes. Zero means 1 MiB. It must be below HighWater.
	LowWater int
	// MaxQueued is the number of bytes Conn.Send may hold in its queue before
	// it blocks. Zero means 4 MiB.
	MaxQueued int
	// MaxInbound is the number of received bytes a handler may leave
	// unconsumed; beyond it the connection closes with ErrInboundOverflow.
	// Zero means 1 MiB.
	MaxInbound int
	// StallPoll is how often a loop rechecks stalled connections (and
	// connections waiting for their output to drain before a graceful close).
	// Zero means 1 ms.
	StallPoll time.Duration
	// DialTimeout bounds Dial when its context has no earlier deadline. Zero
	// means 10 s.
	DialTimeout time.Duration
	// BusyPoll is how long a loop keeps polling its sockets without
	// blocking after it handled traffic or a wake-up (see spin.go): it trades
	// up to this much CPU time per burst for a much faster reaction to the
	// next packet. Zero means DefaultBusyPoll; negative disables it.
	BusyPoll time.Duration
	// NotSentLowat is set as TCP_NOTSENT_LOWAT on every socket: the kernel
	// holds at most about this many bytes not yet sent, and reports the
	// socket writable (which resumes a stalled connection at once,
	// writable.go) when fewer remain. Keeping this short keeps bytes queued
	// later, such as a small message behind a bulk transfer, from waiting
	// behind megabytes of kernel buffer. Zero or negative leaves the kernel
	// default (unlimited); ipc sets it.
	NotSentLowat int
	// LoopbackRecvBuffer is the receive buffer (SO_RCVBUF) of connections
	// whose peer is a loopback address. There the bandwidth-delay product
	// is tiny, so the kernel's autotuned buffer (up to several MiB) only
	// queues bytes that a reader slower than its writer has not consumed
	// yet, and a small message sent behind them waits for all of them.
	// Other connections keep the kernel's autotuning, which a long
	// round trip needs. Zero or negative leaves the kernel's autotuning;
	// ipc sets it.
	LoopbackRecvBuffer int
	// LoopbackCongestion is the congestion control algorithm
	// (TCP_CONGESTION), such as "reno", of connections whose peer is a
	// loopback address: they open with it, and Conn.SetLoopbackCongestion
	// switches them to the kernel's default and back. Empty leaves the
	// kernel's default; so does a name the kernel refuses (not in
	// net.ipv4.tcp_allowed_congestion_control). A loopback path has no
	// congestion to control, and BBR, a common default, holds a sender to
	// some 16 segments in flight there, which a receiver acknowledging once
	// per read (recvwindow.go) makes a stall; ipc sets "reno" and switches
	// to the default while small messages travel beside a large one.
	LoopbackCongestion string
	// Logger receives reactor logs, including gnet's own (adapted); nil
	// discards them.
	Logger *slog.Logger
	// Clock measures the loop timers of Loop.AfterFunc. Nil means the
	// system clock; tests pass a clock.Manual to move time themselves.
	// StallPoll, BusyPoll and DialTimeout always use the system clock.
	Clock clock.Clock
	// TLS configures TLS for accepted connections and the handshakes of
	// both roles (tls.go). The zero value accepts plain TCP.
	TLS TLSConfig
	// MaxAccepted bounds the accepted connections open at once (dialed ones
	// do not count): a connection accepted beyond it is closed at once,
	// before any TLS handshake or Handler call, and counted in
	// Stats.Rejected. Zero means no limit; negative is invalid.
	MaxAccepted int
}

// withDefaults returns a copy of cfg with defaults filled in, or an error
// naming the invalid field.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Loops < 0 || cfg.ReadBufferCap < 0 || cfg.HighWater < 0 || cfg.LowWater < 0 ||
		cfg.MaxQueued < 0 || cfg.MaxInbound < 0 || cfg.StallPoll < 0 || cfg.DialTimeout < 0 || cfg.MaxAccepted < 0 {
		return cfg, errors.New("reactor: invalid config: negative value")
	}
	if cfg.Loops == 0 {
		cfg.Loops = runtime.GOMAXPROCS(0)
	}
	if cfg.ReadBufferCap == 0 {
		cfg.ReadBufferCap = DefaultReadBufferCap
	}
	if cfg.HighWater == 0 {
		cfg.HighWater = DefaultHighWater
	}
	if cfg.LowWater == 0 {
		cfg.LowWater = min(DefaultLowWater, cfg.HighWater/2)
	}
	if cfg.MaxQueued == 0 {
		cfg.MaxQueued = DefaultMaxQueued
	}
	if cfg.MaxInbound == 0 {
		cfg.MaxInbound = DefaultMaxInbound
	}
	if cfg.BusyPoll == 0 {
		cfg.BusyPoll = DefaultBusyPoll
	}
	if cfg.StallPoll == 0 {
		cfg.StallPoll = DefaultStallPoll
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.LowWater >= cfg.HighWater {
		return cfg, fmt.Errorf("reactor: invalid config: LowWater (%d) must be below HighWater (%d)", cfg.LowWater, cfg.HighWater)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Clock = clock.Or(cfg.Clock)
	var err error
	cfg.TLS, err = cfg.TLS.withDefaults()
	return cfg, err
}

// Reactor states.
const (
	stateNew = iota
	stateRunning
	stateStopping
	stateStopped
)

// Reactor is one gnet engine that listens and dials. Accepted and dialed
// connections share its event loops and its Handler.
//
// All methods are safe for concurrent use, except that Dial and Stop must not
// be called from an event loop.
type Reactor struct {
	// immutable after New
	cfg      Config
	h        Handler
	log      *slog.Logger
	stopCtx  context.Context    // cancelled by Stop; aborts dials in progress
	stopFunc context.CancelFunc // cancels stopCtx

	nextID atomic.Uint64
	stats  counters
	// accepted counts the accepted connections open (MaxAccepted);
	// limited is set while connections are being rejected, so that the
	// limit is logged once each time it is reached.
	accepted atomic.Int64
	limited  atomic.Bool
	tasks    atomic.Uint64 // tasks submitted to any loop; ends busy polls
	hs       *handshaker   // TLS handshake goroutines (tls_handshake.go)

	// mu guards the fields below it. Lock order: mu before loopsMu; never
	// hold mu while calling gnet or user code.
	mu     sync.Mutex
	state  int
	eng    gnet.Engine
	addr   net.Addr
	ready  chan struct{} // closed by the first OnTick
	done   chan struct{} // closed when gnet.Rotate returns
	runErr error         // gnet.Rotate's result; read after done
	nconns int           // open connections (OnOpen ran, OnClose not yet)
	idle   chan struct{} // non-nil while Stop waits for nconns == 0
	dials  sync.WaitGroup

	loopsMu sync.Mutex
	loops   map[gnet.EventLoop]*Loop

	// gate is held for reading around every call that enters a gnet loop
	// (Execute, Register) and taken for writing when the engine is about to
	// stop. After Stop closes it nothing reaches gnet's pollers, whose event
	// fds are closed (and may be reused) once the engine has stopped.
	gate       sync.RWMutex
	gateClosed bool
	stopping   atomic.Bool // set when Stop begins
	readyOnce  sync.Once

	wp writePoller // resumes stalled connections when their socket drains
}

// New returns a reactor that is not yet running. cfg is copied and validated;
// h receives every connection's events.
func New(cfg Config, h Handler) (*Reactor, error) {
	if h == nil {
		return nil, errors.New("reactor: nil Handler")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Reactor{
		cfg:      cfg,
		h:        h,
		log:      cfg.Logger,
		stopCtx:  ctx,
		stopFunc: cancel,
		ready:    make(chan struct{}),
		done:     make(chan struct{}),
		loops:    make(map[gnet.EventLoop]*Loop),
		hs:       &handshaker{max: cfg.TLS.MaxHandshakes},
	}, nil
}

// Start runs the engine, listening on addr ("host:port"; "" means a private
// 127.0.0.1:0 listener used only so that dialed connections can be
// registered). It returns once the loops are ready to take connections, or
// with the error that prevented it. A reactor starts at most once.
func (r *Reactor) Start(addr string) error {
	r.mu.Lock()
	if r.state != stateNew {
		r.mu.Unlock()
		return ErrStopped
	}
	r.state = stateRunning
	r.mu.Unlock()

	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if !strings.Contains(addr, "://") {
		addr = "tcp://" + addr
	}
	eh := &engineHandler{r: r}
	go func() {
		err := gnet.Rotate(eh, []string{addr},
			gnet.WithNumEventLoop(r.cfg.Loops),
			gnet.WithLoadBalancing(gnet.LeastConnections),
			gnet.WithTicker(true),
			gnet.WithReadBufferCap(r.cfg.ReadBufferCap),
			gnet.WithReuseAddr(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithLogger(newGnetLogger(r.log)),
		)
		r.runErr = err
		close(r.done)
	}()
	select {
	case <-r.ready:
		return nil
	case <-r.done:
		r.mu.Lock()
		r.state = stateStopped
		r.mu.Unlock()
		r.closeGate()
		r.stopFunc()
		err := r.runErr
		if err == nil {
			err = ErrStopped
		}
		return fmt.Errorf("reactor: start %s: %w", addr, err)
	}
}

// Addr returns the listener's address once started, nil before.
func (r *Reactor) Addr() net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

// Stop closes every connection (OnClose runs for each) and the engine, and
// returns when the loops have exited.
//
// It first closes connections gracefully (Close(ErrStopped): queued output is
// flushed) and waits until they are gone or ctx ends; connections still open
// then are aborted, and their OnClose also gets ErrStopped. Dials in progress
// fail with ErrStopped. Stop must not be called from an event loop. Calling
// it again, or on a reactor never started, returns ErrStopped.
func (r *Reactor) Stop(ctx context.Context) error {
	r.mu.Lock()
	if r.state != stateRunning {
		r.mu.Unlock()
		return ErrStopped
	}
	r.state = stateStopping
	r.stopping.Store(true)
	eng := r.eng
	r.mu.Unlock()

	r.stopFunc() // abort dials still connecting
	r.dials.Wait()

	// Graceful phase: close every connection on its loop.
	r.loopsMu.Lock()
	loops := make([]*Loop, 0, len(r.loops))
	for _, l := range r.loops {
		loops = append(loops, l)
	}
	r.loopsMu.Unlock()
	for _, l := range loops {
		_ = r.execute(l.el, l.closeAllTask)
	}
	r.mu.Lock()
	var idle chan struct{}
	if r.nconns > 0 {
		idle = make(chan struct{})
		r.idle = idle
	}
	r.mu.Unlock()
	var ctxErr error
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
			ctxErr = context.Cause(ctx)
		}
	}

	// Hard phase: nothing enters the loops any more; gnet closes what is
	// left (our OnClose reports ErrStopped) and exits.
	r.closeGate()
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = eng.Stop(cctx) // triggers shutdown; we wait on done instead of gnet's 500 ms poll
	<-r.done
	r.hs.wait() // every connection closed, so every handshake has ended
	r.wp.stop()

	for _, l := range loops {
		l.stopTimer()
	}
	r.loopsMu.Lock()
	for _, l := range r.loops {
		l.stopTimer()
	}
	r.loopsMu.Unlock()

	r.mu.Lock()
	r.state = stateStopped
	r.mu.Unlock()
	return ctxErr
}

// closeGate stops all further entries into gnet's loops.
func (r *Reactor) closeGate() {
	r.gate.Lock()
	r.gateClosed = true
	r.gate.Unlock()
}

// execute runs task on el unless the reactor has stopped.
func (r *Reactor) execute(el gnet.EventLoop, task gnet.Runnable) error {
	r.gate.RLock()
	if r.gateClosed {
		r.gate.RUnlock()
		return ErrStopped
	}
	r.tasks.Add(1)
	err := el.Execute(context.Background(), task)
	r.gate.RUnlock()
	return err
}

// loopFor returns the Loop wrapping el, creating it on first use.
// It runs on el.
func (r *Reactor) loopFor(el gnet.EventLoop) *Loop {
	r.loopsMu.Lock()
	defer r.loopsMu.Unlock()
	l := r.loops[el]
	if l == nil {
		l = newLoop(r, el)
		r.loops[el] = l
	}
	return l
}

// connOpened and connClosed maintain the open connection count that Stop
// waits on.
func (r *Reactor) connOpened() {
	r.mu.Lock()
	r.nconns++
	r.mu.Unlock()
	r.stats.conns.Add(1)
}

func (r *Reactor) connClosed() {
	r.mu.Lock()
	r.nconns--
	if r.nconns == 0 && r.idle != nil {
		close(r.idle)
		r.idle = nil
	}
	r.mu.Unlock()
	r.stats.conns.Add(-1)
}

// engineHandler adapts gnet's EventHandler to the reactor.
type engineHandler struct {
	gnet.BuiltinEventEngine
	r *Reactor
}

// OnBoot records the engine and the listener's bound address. It runs before
// the loops exist, so it must not register connections.
func (eh *engineHandler) OnBoot(eng gnet.Engine) gnet.Action {
	r := eh.r
	addr, err := listenerAddr(eng)
	if err != nil {
		r.log.Warn("reactor: cannot read listener address", "err", err)
	}
	r.mu.Lock()
	r.eng = eng
	r.addr = addr
	r.mu.Unlock()
	return gnet.None
}

// listenerAddr returns the bound address of eng's only listener.
func listenerAddr(eng gnet.Engine) (net.Addr, error) {
	fd, err := eng.Dup()
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "reactor-listener")
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, err
	}
	addr := ln.Addr()
	_ = ln.Close()
	return addr, nil
}

// OnTick fires first once the loops are registered and running: Start's
// readiness signal. The ticker is otherwise unused.
func (eh *engineHandler) OnTick() (time.Duration, gnet.Action) {
	eh.r.readyOnce.Do(func() { close(eh.r.ready) })
	return time.Hour, gnet.None
}

// OnOpen wraps the gnet connection (or, for a dialed one, completes the Conn
// that Dial created) and calls Handler.OnOpen.
func (eh *engineHandler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	r := eh.r
	c, _ := gc.Context().(*Conn)
	if c == nil {
		if !r.admit(gc) {
			return nil, gnet.Close
		}
		c = newConn(r, false, nil)
	}
	c.openOnLoop(gc, r.loopFor(gc.EventLoop()))
	if len(c.loop.deferred) > 0 {
		c.loop.runDeferred() // gnet has polled (rewake.go)
	}
	r.connOpened()
	if c.startTLSOnLoop() { // Handler.OnOpen runs after the handshake
		if r.stopping.Load() {
			c.Close(ErrStopped)
		}
		return nil, gnet.None
	}
	r.h.OnOpen(c)
	if c.dead {
		return nil, gnet.None
	}
	if r.stopping.Load() {
		c.Close(ErrStopped)
	}
	if c.abortRequested() {
		return nil, gnet.Close
	}
	return nil, gnet.None
}

// admit counts a newly accepted connection against MaxAccepted and reports
// whether it may open; a rejected one is counted and closed by the caller.
func (r *Reactor) admit(gc gnet.Conn) bool {
	max := int64(r.cfg.MaxAccepted)
	if max <= 0 {
		return true
	}
	if r.accepted.Add(1) <= max {
		return true
	}
	r.accepted.Add(-1)
	r.stats.rejected.Add(1)
	if r.limited.CompareAndSwap(false, true) {
		r.log.Warn("reactor: accepted-connection limit reached",
			"limit", max, "err", ErrTooManyConnections)
	}
	if r.log.Enabled(context.Background(), slog.LevelDebug) {
		peer := ""
		if a := gc.RemoteAddr(); a != nil {
			peer = a.String()
		}
		r.log.Debug("reactor: connection rejected", "peer", peer, "err", ErrTooManyConnections)
	}
	return false
}

// released counts the close of an accepted connection (MaxAccepted).
func (r *Reactor) released() {
	if r.cfg.MaxAccepted > 0 && r.accepted.Add(-1) < int64(r.cfg.MaxAccepted) {
		r.limited.Store(false)
	}
}

// OnTraffic presents all unconsumed inbound bytes to Handler.OnData.
func (eh *engineHandler) OnTraffic(gc gnet.Conn) gnet.Action {
	c, _ := gc.Context().(*Conn)
	if c == nil || c.dead {
		return gnet.Close
	}
	return c.trafficOnLoop()
}

// OnClose marks the connection dead and calls Handler.OnClose.
func (eh *engineHandler) OnClose(gc gnet.Conn, err error) gnet.Action {
	c, _ := gc.Context().(*Conn)
	if c == nil {
		return gnet.None
	}
	c.closedOnLoop(err)
	return gnet.None
}
