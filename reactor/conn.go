package reactor

import (
	"context"
	"net"
	"sync"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"
)

// Close states (Conn.closeState).
const (
	closeNone     = iota // open
	closeGraceful        // Close called: drain, then close
	closeAbort           // Abort called (or inbound overflow): close at once
)

// Conn is one connection owned by one event loop.
//
// Any-goroutine methods: ID, Data, Dialed, LocalAddr, RemoteAddr, Loop, Send,
// Execute, Wake, Close, Abort. All others (SetData, Write, Writable, Closed,
// SetPipe, SetInterleaved, PauseRead, ResumeRead, ReadInto) are loop-only: call them only from Handler methods, Execute functions or
// loop timers of this connection's loop.
//
// Output has two paths. Send (any goroutine) appends to an ordered per-
// connection queue that a pump on the loop hands to gnet; Write (loop-only)
// hands bytes to gnet at once. Execute functions travel in the Send queue,
// so they run after everything sent before them has been handed to gnet.
//
// A Conn is closed exactly once, by Close (graceful), Abort (immediate), an
// I/O error or end of stream, inbound overflow or Reactor.Stop; OnClose then
// runs once, last. After OnClose the Conn never touches its socket again:
// Write, Send and Execute return ErrClosed.
type Conn struct {
	// immutable once the Conn is open (set before it is published)
	r         *Reactor
	id        uint64
	dialed    bool
	local     string
	remote    string
	loop      *Loop
	fd        int // the socket, for the loop's busy-poll set
	el        gnet.EventLoop
	pumpTask  gnet.Runnable // allocated once: runs pumpOnLoop
	wakeTask  gnet.Runnable // allocated once: runs wakeOnLoop
	abortTask gnet.Runnable // allocated once: runs abortOnLoop
	// writableTask is allocated once: the write poller runs it when the
	// socket drained (writable.go).
	writableTask gnet.Runnable

	// loop-owned
	data         any
	gc           gnet.Conn // nil once dead: a stale gnet.Conn can reach a reused fd
	dead         bool      // OnClose has run
	iov          [][]byte  // Write's Writev scratch (gnet rewrites its argument)
	batchIov     [][]byte  // the pump's Writev scratch
	batch        []op      // pump scratch
	inStall      bool      // in loop.stalled
	pumpStalled  bool      // pump paused at HighWater; scheduled stays true
	wantWritable bool      // Writable returned false: OnWritable is owed
	closeWait    bool      // graceful close waits for gnet's buffer to drain
	tls          *tlsState // nil for plain TCP; set before open (tls.go)
	wpAdded      bool      // the socket is in the write poller's epoll set
	readPaused   bool      // PauseRead in effect (readpause.go)
	pollFD       int       // gnet loop's epoll fd: 0 unknown yet, -1 not found
	highWater    int       // SetPipe's HighWater; 0: the Config's (pipe.go)
	lowWater     int       // SetPipe's LowWater; 0: the Config's (pipe.go)
	loopback     bool      // the peer is a loopback address (set at open)
	interleaved  bool      // SetInterleaved: yield the P after large transfers (yield.go)
	into         readInto  // ReadInto's pending direct read (readinto.go)
	bulk         bool      // SetBulk: a large message is under way (spin.go)
	ccDefault    string    // the kernel's congestion control, if openCongestion changed it (recvwindow.go)

	scheduled  atomic.Bool  // a pump turn is pending or paused (at most one)
	wake       atomic.Int32 // wakeIdle, wakeQueued, wakeRunning or wakeAgain (rewake.go)
	closeState atomic.Int32 // closeNone, closeGraceful or closeAbort
	queued     atomic.Int64 // mirror of qBytes, read by Writable

	// mu guards the Send queue. Never held while calling gnet or user code.
	mu       sync.Mutex
	q        []op          // pending Send buffers and Execute functions
	qHead    int           // first pending entry of q
	qBytes   int           // bytes pending in q
	closeErr error         // the error OnClose reports, once decided
	noMore   bool          // Send and Execute refuse new work
	space    chan struct{} // closed when blocked senders may retry
}

func newConn(r *Reactor, dialed bool, data any) *Conn {
	c := &Conn{r: r, id: r.nextID.Add(1), dialed: dialed, data: data}
	c.pumpTask = gnet.RunnableFunc(func(context.Context) error { c.pumpOnLoop(); return nil })
	c.wakeTask = gnet.RunnableFunc(func(context.Context) error { c.wakeOnLoop(); return nil })
	c.abortTask = gnet.RunnableFunc(func(context.Context) error { c.abortOnLoop(); return nil })
	c.writableTask = newWritableTask(c)
	return c
}

// openOnLoop binds c to its gnet connection and loop.
func (c *Conn) openOnLoop(gc gnet.Conn, l *Loop) {
	c.gc = gc
	c.loop = l
	c.el = gc.EventLoop()
	gc.SetContext(c)
	if a := gc.LocalAddr(); a != nil {
		c.local = a.String()
	}
	if a := gc.RemoteAddr(); a != nil {
		c.remote = a.String()
	}
	l.conns[c] = struct{}{}
	c.fd = gc.Fd()
	l.spinAdd(c.fd)
	setNotSentLowat(c.fd, c.r.cfg.NotSentLowat)
	if ip := net.ParseIP(hostOf(c.remote)); ip != nil && ip.IsLoopback() {
		c.loopback = true
		setRecvBuffer(c.fd, c.r.cfg.LoopbackRecvBuffer)
		c.openCongestion()
	}
}

// ID is unique per reactor.
func (c *Conn) ID() uint64 { return c.id }

// Data returns the value given to Dial, or set by SetData.
func (c *Conn) Data() any { return c.data }

// SetData sets the value returned by Data. Loop-only; call it in OnOpen
// (other goroutines see it only if they learn of the Conn afterwards).
func (c *Conn) SetData(v any) { c.data = v }

// Dialed reports whether the connection came from Dial.
func (c *Conn) Dialed() bool { return c.dialed }

// LocalAddr returns the local address, captured at open.
func (c *Conn) LocalAddr() string { return c.local }

// RemoteAddr returns the remote address, captured at open.
func (c *Conn) RemoteAddr() string { return c.remote }

// Loop returns the connection's event loop.
func (c *Conn) Loop() *Loop { return c.loop }

// Write writes bufs in order (loop-only). The bytes are copied or written
// before it returns, so bufs may be reused. It never blocks; check Writable
// to apply back-pressure. After Abort or close it returns ErrClosed and
// writes nothing. While a graceful Close drains, Write still works (so an
// Execute function queued before Close can write a last message); the close
// waits for those bytes too.
//
// Write bytes follow everything already handed to gnet (including Send
// buffers whose pump turn has run) but may precede Send buffers still
// waiting in the queue. A write error closes the connection at once: OnClose
// runs inside Write, which then returns ErrClosed.
func (c *Conn) Write(bufs ...[]byte) error {
	if c.dead || c.closeState.Load() == closeAbort {
		return ErrClosed
	}
	return c.writeOnLoop(bufs)
}

// writeOnLoop hands bufs to gnet. It reports ErrClosed if the connection is
// or becomes dead (gnet closes it inside Write on an I/O error).
func (c *Conn) writeOnLoop(bufs [][]byte) error {
	if c.dead {
		return ErrClosed
	}
	if ok, err := c.tlsWriteOnLoop(bufs); ok {
		return err
	}
	var err error
	n := 0
	switch len(bufs) {
	case 0:
		return nil
	case 1:
		if n = len(bufs[0]); n == 0 {
			return nil
		}
		_, err = c.gc.Write(bufs[0])
	default:
		c.iov = append(c.iov[:0], bufs...)
		n, err = c.gc.Writev(c.iov)
		clear(c.iov)
	}
	if c.dead {
		return ErrClosed
	}
	if c.readPaused {
		c.applyReadPause() // gnet may have re-registered EPOLLIN
	}
	c.yieldAfter(n) // the whole write, one buffer or several
	return err
}

// Writable reports whether outbound bytes (gnet's buffer plus the Send
// queue) are below HighWater (loop-only). When it returns false, OnWritable
// follows once gnet's buffer drains to LowWater, unless the connection closes
// first. An aborted or closed connection is never writable.
func (c *Conn) Writable() bool {
	if c.dead || c.closeState.Load() == closeAbort {
		return false
	}
	if c.gc.OutboundBuffered()+int(c.queued.Load()) < c.highMark() {
		return true
	}
	c.wantWritable = true
	c.loop.stall(c)
	c.r.wp.arm(c)
	return false
}

// OutboundBuffered reports how many bytes gnet holds for the connection,
// written but not yet taken by the socket (loop-only). A Write while it is
// not zero copies everything into that buffer.
func (c *Conn) OutboundBuffered() int {
	if c.dead {
		return 0
	}
	return c.gc.OutboundBuffered()
}

// Closed reports whether the connection is closing or closed (loop-only).
func (c *Conn) Closed() bool {
	return c.dead || c.closeState.Load() != closeNone
}

// Close closes gracefully, from any goroutine. Send and Execute refuse new
// work at once (ErrClosed); what was queued before still runs and is
// written, gnet's buffer drains to the socket, then the socket closes and
// OnClose gets err (ErrClosed if err is nil). Later Close or Abort calls do
// not change the reported error, but Abort still cuts the drain short. A peer
// that never reads keeps a closing connection open; use Abort to bound that.
func (c *Conn) Close(err error) {
	if err == nil {
		err = ErrClosed
	}
	c.mu.Lock()
	if c.noMore {
		c.mu.Unlock()
		return
	}
	c.noMore = true
	c.closeErr = err
	c.wakeSendersLocked()
	c.mu.Unlock()
	c.closeState.CompareAndSwap(closeNone, closeGraceful)
	c.schedule()
}

// Abort closes at once, from any goroutine, dropping queued and buffered
// output (gnet makes one last non-blocking attempt to write its buffer).
// OnClose gets err (ErrClosed if nil) unless Close already set an error.
// Called from a handler on the loop, the connection closes as soon as the
// handler returns and no further OnData follows.
func (c *Conn) Abort(err error) {
	if err == nil {
		err = ErrClosed
	}
	c.mu.Lock()
	if c.closeState.Load() == closeAbort {
		c.mu.Unlock()
		return
	}
	if c.closeErr == nil {
		c.closeErr = err
	}
	c.noMore = true
	c.dropQueueLocked()
	c.closeState.Store(closeAbort) // after closeErr: the loop may act on it at once
	c.mu.Unlock()
	_ = c.r.execute(c.el, c.abortTask)
}

// abortRequested reports whether Abort was called.
func (c *Conn) abortRequested() bool { return c.closeState.Load() == closeAbort }

// abortOnLoop closes the connection at once (loop side of Abort).
func (c *Conn) abortOnLoop() {
	if c.dead {
		return
	}
	c.closeNowOnLoop()
}

// closeNowOnLoop closes the gnet connection; OnClose runs before it returns.
// It must not be called from inside OnTraffic (return gnet.Close there).
func (c *Conn) closeNowOnLoop() {
	if c.dead {
		return
	}
	_ = c.el.Close(c.gc)
}

// afterUserOnLoop acts on an Abort issued by user code just run on the loop.
func (c *Conn) afterUserOnLoop() {
	if !c.dead && c.closeState.Load() == closeAbort {
		c.closeNowOnLoop()
	}
}

// Wake schedules one OnWake call, from any goroutine. Calls made before the
// loop runs OnWake coalesce into that one call; Wake does not allocate unless
// it has to enter the loop (gnet then allocates its task). No OnWake follows
// Abort or close.
//
// A Wake made while OnWake runs is submitted when OnWake returns; one in
// every eight of those in a row waits until the loop has read its sockets
// if any has input waiting (rewake.go).
func (c *Conn) Wake() {
	for {
		switch c.wake.Load() {
		case wakeIdle:
			if c.wake.CompareAndSwap(wakeIdle, wakeQueued) {
				c.submitWake()
				return
			}
		case wakeRunning:
			if c.wake.CompareAndSwap(wakeRunning, wakeAgain) {
				return // wakeOnLoopSpin submits it when OnWake returns
			}
		default: // wakeQueued, wakeAgain: one OnWake is owed already
			return
		}
	}
}

func (c *Conn) wakeOnLoop() { c.wakeOnLoopSpin(true) }

// wakeOnLoopSpin runs OnWake; spin says whether to busy-poll afterwards
// (not when the wake was handed to a loop that is polling already).
func (c *Conn) wakeOnLoopSpin(spin bool) {
	seen := c.r.tasks.Load()
	if c.dead || c.closeState.Load() == closeAbort {
		c.wake.Store(wakeIdle)
		return
	}
	c.wake.Store(wakeRunning)
	c.r.h.OnWake(c)
	if !c.wake.CompareAndSwap(wakeRunning, wakeIdle) {
		c.wake.Store(wakeQueued) // Wake was called meanwhile (wakeAgain)
		c.rewakeOnLoop()
	}
	c.afterUserOnLoop()
	if spin && !c.dead {
		c.spinOnLoop(seen)
	}
}

// trafficOnLoop presents unconsumed inbound bytes to OnData and enforces
// MaxInbound. It runs inside gnet's OnTraffic.
func (c *Conn) trafficOnLoop() gnet.Action {
	c.loop.chained = 0   // gnet has polled (rewake.go)
	c.loop.restoreRead() // gnet's read is done (ShortenNextRead, readinto.go)
	if len(c.loop.deferred) > 0 {
		c.loop.runDeferred()
	}
	seen := c.r.tasks.Load()
	gc := c.gc
	if c.closeState.Load() == closeAbort {
		return gnet.Close
	}
	if c.tls != nil {
		return c.tlsTrafficOnLoop()
	}
	buf, _ := gc.Peek(-1)
	if len(buf) == 0 {
		return gnet.None
	}
	c.into = readInto{} // a request lapses at the next OnData
	n := c.r.h.OnData(c, buf)
	c.readAfter(n) // yield.go
	if c.dead {
		return gnet.None
	}
	if c.readPaused {
		c.applyReadPause() // gnet re-registered EPOLLIN, or the pause began in OnData
	}
	if n > 0 {
		_, _ = gc.Discard(min(n, len(buf)))
	}
	if c.closeState.Load() == closeAbort {
		return gnet.Close
	}
	if gc.InboundBuffered() > c.r.cfg.MaxInbound {
		c.failRead(ErrInboundOverflow)
		return gnet.Close
	}
	if c.into.on {
		if act := c.readIntoOnLoop(); act != gnet.None || c.dead {
			return act
		}
	}
	c.spinOnLoop(seen)
	return gnet.None
}

// closedOnLoop runs from gnet's OnClose: c becomes dead, pending work is
// dropped, blocked senders fail, and Handler.OnClose runs.
func (c *Conn) closedOnLoop(err error) {
	if c.dead {
		return
	}
	if c.tls != nil {
		err = c.tlsClosedOnLoop(err)
	}
	c.dead = true
	c.gc = nil
	if len(c.loop.deferred) > 0 {
		c.loop.runDeferred() // gnet has polled (rewake.go)
	}
	c.loop.spinDel(c.fd)
	c.r.wp.forget(c)
	c.mu.Lock()
	if c.closeErr == nil {
		switch {
		case err != nil:
			c.closeErr = err
		case c.r.stopping.Load():
			c.closeErr = ErrStopped
		default:
			c.closeErr = ErrClosed
		}
	}
	reason := c.closeErr
	c.noMore = true
	c.dropQueueLocked()
	c.mu.Unlock()
	delete(c.loop.conns, c)
	if !c.dialed {
		c.r.released()
	}
	if c.handlerOwnsOnLoop() {
		c.r.h.OnClose(c, reason)
	}
	c.r.connClosed()
}

// spinOnLoop busy-polls the loop after c's handler ran (spin.go), unless
// the handler submitted work to a loop (tasks moved past seen) or c has
// output waiting in gnet's buffer, which gnet writes when the socket
// drains.
func (c *Conn) spinOnLoop(seen uint64) {
	if c.gc == nil || c.gc.OutboundBuffered() > 0 {
		return
	}
	c.loop.spinOnLoop(seen)
}
