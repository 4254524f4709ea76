package ipc

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipcframe/ipcframe/reactor"
)

// conn is one connection: its writer, reader and the queue of messages
// addressed to it. Its state belongs to its event loop except where noted.
//
// Any goroutine may call sendDirect; everything else runs on the loop, from
// the reactor's callbacks.
type conn struct {
	// immutable
	svc  *Service
	pool *pool // nil for accepted connections
	// dialed: the resolved address it was dialed to (resolver_pool.go)
	addr string

	// set in OnOpen, then immutable
	rc     *reactor.Conn
	ls     *loopState // what the connections of its loop share (loopstate.go)
	id     uint64
	remote string
	log    connLog // log.go: adds the connection's attributes

	// loop-owned
	w       *writer
	r       *reader
	rest    []byte // the start of a packet cut by the end of a read; nil when idle (releaseIdle)
	restUse bool   // rest was used since the last releaseIdle
	closed  bool
	active  bool      // reached OnOpen
	passive bool      // takes no pool messages until activateOnLoop
	partial bool      // the last onData left part of a packet unconsumed
	gotMsg  bool      // a whole message arrived (healthy)
	gotPkt  bool      // a whole packet arrived (first-packet rule)
	retired bool      // takes no pool messages; closes once idle (retire)
	openAt  time.Time // when OnOpen ran (healthy)

	// pipe.go: the two ends of the pipe, long or short
	sendPipe  shortSpan
	recvPipe  shortSpan
	sendMode  uint8 // pipeLarge, pipeSmall, pipeShort or pipeLong: the pipe set on rc
	recvGrown bool  // the receive buffer was lengthened (growRecv)
	sendCCDef bool  // the kernel's congestion control, not loopbackCongestion: the sending end is short (adaptPipe)
	recvAlone int   // bytes received while one large message arrived alone (growRecv)

	// loop-owned: why it retired, ErrTooManyCanceled or ErrAddressGone
	retiredBy error

	// raw mode (raw.go), loop-owned
	raw   bool   // no packets read or written
	rawIn []byte // raw bytes RawData left unconsumed (≤ MaxRawBuffered)
	// rawExit is what Activate or EnterPassive asked of a raw connection
	// (rawStay, rawToPassive, rawToActive): any goroutine sets it, the
	// loop acts on it.
	rawExit atomic.Int32

	// loop-owned: the pieces of a write whose packets end with borrowed
	// values (borrow.go); emptied after each write
	iov [][]byte

	// keepalive (keepalive.go)
	timer        keepAliveTimer
	firstTimer   keepAliveTimer // accepted: the first-packet rule, until a packet arrives
	tickFn       func()
	tickPeriod   time.Duration
	lastRecv     time.Time // dialed: last byte received
	lastSend     time.Time // dialed: last write
	lastPing     time.Time // dialed: last KeepAlive sent
	recvInWindow bool      // accepted: a byte arrived in this window
	keepAlives   int       // accepted: pings received in this window

	stats connCounters // stats.go: atomics, read by Service.Stats

	// relay is the connection's side of the relay engine (relay_conn.go);
	// nil when the service does not relay. Immutable.
	relay *relayConn

	// addrGone is set by the pool (resolver_pool.go) when addr left the
	// pool's resolved addresses; the loop then retires the connection.
	addrGone atomic.Bool

	// dispatching is true while the loop runs handlers for this connection;
	// sendDirect then skips the wake-up because the loop pumps afterwards.
	dispatching atomic.Bool

	// guarded by mu
	mu      sync.Mutex
	direct  []*msgStub // connection-directed messages not yet in the writer
	dead    bool       // closed: sendDirect and SendRaw fail
	directN atomic.Int32
	rawOut  []rawSend // Conn.SendRaw calls not yet written (raw.go)
	rawOutN atomic.Int32
}

func newConn(svc *Service, p *pool) *conn {
	c := &conn{svc: svc, pool: p}
	c.log = connLog{c}
	c.w = newWriter(&svc.cfg)
	c.r = newReader(&svc.cfg, c)
	if svc.relay != nil {
		c.relay = newRelayConn(svc.relay, c)
	}
	return c
}

// testHookDirectPublished, if set by a test, runs in sendDirect once the
// message is visible to the connection's loop.
var testHookDirectPublished func(c *conn)

// sendDirect queues st for this connection from any goroutine.
//
// The message is counted in flight before the loop can see it: counted
// after, its completion could bring the count to zero while other messages
// are still in flight, and Stop would stop draining early.
func (c *conn) sendDirect(st *msgStub) error {
	c.svc.messageQueued()
	if !c.queueDirect(st) {
		st.discard()
		return ErrConnectionGone
	}
	return nil
}

// queueDirect appends st, counted in flight already, to the direct queue
// and wakes the loop; false when the connection is dead (st untouched).
func (c *conn) queueDirect(st *msgStub) bool {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return false
	}
	st.queued, st.owner = true, c
	c.direct = append(c.direct, st)
	c.directN.Add(1)
	c.mu.Unlock()
	if testHookDirectPublished != nil {
		testHookDirectPublished(c)
	}
	if !c.dispatching.Load() {
		c.rc.Wake()
	}
	return true
}

// pull moves queued messages into the writer while it accepts them.
func (c *conn) pull() {
	if c.relay != nil {
		c.relay.pullOnLoop()
	}
	if c.directN.Load() > 0 {
		c.mu.Lock()
		k := 0
		for k < len(c.direct) && c.w.enqueue(c.direct[k]) {
			c.direct[k].queued = false
			k++
		}
		if k > 0 {
			n := copy(c.direct, c.direct[k:])
			clear(c.direct[n:])
			c.direct = c.direct[:n]
			c.directN.Add(int32(-k))
		}
		c.mu.Unlock()
	}
	if c.pool != nil && !c.passive && !c.retired && !c.pool.pull(c) {
		c.retire(ErrAddressGone) // checked under the pool's lock: no message taken since
	}
}

// activateOnLoop ends the raw phase and the passive state (Conn.Activate).
func (c *conn) activateOnLoop() {
	if c.closed || (!c.passive && !c.raw) {
		return
	}
	c.leaveRawOnLoop()
	if c.closed {
		return
	}
	if !c.w.helloSent && c.svc.cfg.MessageWindow > 0 {
		c.w.helloPending = true // window.go
	}
	if c.passive {
		c.passive = false
		if c.pool != nil {
			c.pool.activated(c)
		}
	}
	c.pump()
}

// pump writes what the writer has, up to the loop's quantum, while the
// socket is writable. It runs after every event that may have produced
// output. Completions run after the bytes are handed to the socket.
func (c *conn) pump() {
	if c.rawOutN.Load() > 0 {
		c.flushRaw(false) // raw.go
	}
	if c.raw {
		return
	}
	budget := c.pumpQuantum() // pipe.go
	if !c.retired && c.w.canceledWaits >= c.retireAt() {
		c.retire(ErrTooManyCanceled)
	}
	if !c.retired && c.addrGone.Load() {
		c.retire(ErrAddressGone)
	}
	for !c.closed {
		c.pull()
		c.w.settleAcks() // relay_credit.go
		if !c.w.hasOutput() || !c.rc.Writable() {
			break
		}
		ls := c.ls
		out := c.pumpBatch() // pipe.go
		// n: bytes in out; total: n plus the borrowed values that end
		// some of its packets (borrow.go), at most len(out) in all.
		// Borrow only when gnet's buffer is empty: otherwise Write copies
		// every piece into it anyway, a buffer node each (borrow.go).
		n, total, start := 0, 0, 0
		borrow := c.rc.OutboundBuffered() == 0
		for size := c.w.packetSize(); total+size <= len(out); size = c.w.packetSize() {
			k, ref, err := c.w.fillBorrow(out[n:n+size], borrow)
			if err != nil {
				ls.putBatch(out)
				clear(c.iov)
				c.iov = c.iov[:0]
				c.w.releaseLent()
				c.abort("write", err)
				return
			}
			if k == 0 {
				break
			}
			n += k
			total += k + len(ref)
			if ref != nil {
				c.iov = append(c.iov, out[start:n], ref)
				start = n
			}
		}
		if total == 0 {
			ls.putBatch(out)
			break
		}
		var err error
		if len(c.iov) == 0 {
			err = c.rc.Write(out[:n])
		} else {
			if start < n {
				c.iov = append(c.iov, out[start:n])
			}
			// The reactor sends or copies every piece before it
			// returns (borrow.go): the values may complete after.
			err = c.rc.Write(c.iov...)
			clear(c.iov)
			c.iov = c.iov[:0]
		}
		ls.putBatch(out)
		c.w.releaseLent() // asyncsource.go
		if err != nil {
			break // OnClose follows
		}
		c.lastSend = c.svc.cfg.Clock.Now()
		c.countSent(total)
		c.adaptPipe(total) // pipe.go
		c.runCompletions()
		if budget -= total; budget <= 0 {
			c.rc.Wake()
			break
		}
	}
	c.runCompletions()
	if c.closed {
		return
	}
	if c.retired && !c.w.busy() && c.directN.Load() == 0 {
		c.rc.Close(&ConnError{Op: "retire", Peer: c.remote, ConnID: c.id, Err: c.retiredBy})
		return
	}
	c.flowControl() // flow.go
	if c.relay != nil {
		c.relay.watchStallOnLoop() // relay_stall.go
	}
	if c.pool != nil && !c.closed {
		c.pool.closeIdle(c)
	}
}

// flushWaiting is the reader's mid-feed flush (reader.feed): it writes
// the connection's output (flushMidFeed) only when a message that has not
// started yet waits for it (a response a handler gave, a caller's request,
// a command), and reports whether the connection is still open. Bulk chunks
// and window credit alone wait for the pump after the feed: a flush for them
// is a write per dispatched message that moves no small message (at the
// client the first flush after a completion runs before the woken caller
// has queued its next request).
func (c *conn) flushWaiting() bool {
	if c.closed {
		return false
	}
	if !c.newOutput() {
		return true
	}
	return c.flushMidFeed()
}

// newOutput reports whether a message or command that has not started
// waits to be written: in the direct queue, the pool's queue, raw sends,
// the relay, or the writer's queue (loop).
func (c *conn) newOutput() bool {
	return c.directN.Load() > 0 || c.rawOutN.Load() > 0 || c.relay != nil ||
		(c.pool != nil && c.pool.queuedN.Load() > 0) || c.w.newWaiting()
}

// retireAt is how many requests canceled while waiting, and never
// answered, retire the connection: half of MaxResponseWait, at least 1.
func (c *conn) retireAt() int { return max(1, c.svc.cfg.MaxResponseWait/2) }

// retire stops the connection from taking pool messages; it closes once its
// writer is idle, with why, and its pool replaces it. Two causes:
// ErrTooManyCanceled (a canceled request keeps its writer slot until its
// response arrives, to drop it and tell the peer to stop, so a peer that
// never answers them would otherwise clog the connection for good) and
// ErrAddressGone (its address left the pool's resolved addresses).
func (c *conn) retire(why error) {
	c.retired, c.retiredBy = true, why
	c.log.Debug("ipc: retiring connection", "why", why, "canceled_waits", c.w.canceledWaits)
	if c.pool != nil {
		c.pool.retired(c, c.holdsSync())
	}
}

// holdsSync reports whether the writer holds a synchronous message that
// may still go to the peer: queued, being written, or a request written
// and waiting for its response (if the connection fails, a resendable one
// goes back to the queue and must reach the next synchronous connection
// before the messages that followed it). A retiring connection keeps the
// synchronous role while this holds.
func (c *conn) holdsSync() bool {
	w := c.w
	if w.curSync >= 0 || w.syncWait.len() > 0 {
		return true
	}
	for i := 0; w.waiting > 0 && i < len(w.slots); i++ {
		if s := &w.slots[i]; s.phase == slotWait && s.st != nil && s.st.flags&Synchronous != 0 {
			return true
		}
	}
	return false
}

func (c *conn) runCompletions() {
	w := c.w
	for len(w.done) > 0 || len(w.failed) > 0 {
		for i := 0; i < len(w.done); i++ {
			st := w.done[i]
			w.done[i] = nil
			if st.flags&CloseAfter != 0 {
				c.rc.Close(ErrConnectionClosed)
			}
			keep := st.keep // a relay stub may be reused once complete returns
			if st.complete(nil, nil) && !keep {
				st.recycle()
			}
		}
		w.done = w.done[:0]
		for i := 0; i < len(w.failed); i++ {
			f := w.failed[i]
			w.failed[i] = failedMsg{}
			f.st.fail(f.kind, f.cause)
		}
		w.failed = w.failed[:0]
	}
}

func (c *conn) abort(op string, err error) {
	c.rc.Abort(&ConnError{Op: op, Peer: c.remote, ConnID: c.id, Err: err})
}

// onData feeds received bytes to the reader (loop). It always consumes
// everything: the bytes of a packet cut by the end of a read are kept in
// c.rest until the packet is whole, so that the reactor never has to join
// its buffered bytes with the next read (which would copy and allocate).
func (c *conn) onData(data []byte) int {
	c.lastRecv, c.recvInWindow = c.svc.cfg.Clock.Now(), true
	c.countReceived(len(data))
	if c.raw {
		c.gotPkt = true // raw bytes count as the first packet
		c.stopFirstTimer()
		return c.onRawData(data) // raw.go
	}
	c.r.reads++ // window.go, besideProbe
	if c.consume(data) {
		c.pump()
	}
	c.noteShortRead(len(data)) // readinto.go
	c.armReadInto()
	return len(data)
}

// consume feeds received bytes to the reader, which runs the handlers. On
// bad input it closes the connection and reports false.
func (c *conn) consume(data []byte) bool {
	c.dispatching.Store(true)
	err := c.feed(data)
	c.dispatching.Store(false)
	return c.afterFeed(data, len(data), err)
}

// afterFeed finishes a feed of n received bytes, data being those that
// went through the reader's input (the rest were read straight into a
// value, readinto.go), that returned err; it reports false if the
// connection closed.
func (c *conn) afterFeed(data []byte, n int, err error) bool {
	if c.closed {
		return false // closed by a write during the feed (flushMidFeed)
	}
	c.partial = len(c.rest) > 0
	c.adaptRecv(n) // pipe.go
	if c.gotPkt {
		c.stopFirstTimer()
	}
	if err != nil {
		err = tlsMismatch(data, err)
		c.abort("read", err) // logged when it closes (logClosed)
		return false
	}
	if c.r.asyncHeld > c.maxUnconsumed() {
		c.abort("read", fmt.Errorf("%w: %d bytes held by asynchronous sinks", ErrUnconsumedOverflow, c.r.asyncHeld))
		return false
	}
	return true
}

func (c *conn) feed(data []byte) error {
	if c.r.open.on {
		// The packet opened for reading into a value (readinto.go) takes
		// its bytes first.
		n, err := c.r.openFeed(data)
		if err != nil {
			return err
		}
		if data = data[n:]; len(data) == 0 {
			return nil
		}
	}
	if len(c.rest) > 0 {
		c.restUse = true
		// Complete the cut packet first: its header, then its payload.
		need := packetHeaderSize
		if len(c.rest) >= packetHeaderSize {
			h, err := parsePacketHeader(c.rest, maxPacketPayload)
			if err != nil {
				return err
			}
			need = packetHeaderSize + h.size
		} else if len(c.rest)+len(data) >= packetHeaderSize {
			k := packetHeaderSize - len(c.rest)
			c.rest = append(c.rest, data[:k]...)
			data = data[k:]
			return c.feed(data)
		}
		if c.r.direct && len(c.rest) < directTailSize && len(c.rest) < need {
			// Headers first: the packet may open (readinto.go).
			k := min(directTailSize, need) - len(c.rest)
			k = min(k, len(data))
			c.rest = append(c.rest, data[:k]...)
			data = data[k:]
			if ok, err := c.r.tryOpen(c.rest); err != nil || ok {
				c.rest = c.rest[:0]
				if err != nil || len(data) == 0 {
					return err
				}
				return c.feed(data)
			}
		}
		k := min(need-len(c.rest), len(data))
		c.rest = append(c.rest, data[:k]...)
		data = data[k:]
		if len(c.rest) < need {
			return nil
		}
		if _, err := c.r.feed(c.rest); err != nil {
			return err
		}
		c.rest = c.rest[:0]
		c.gotPkt = true
	}
	n, err := c.r.feed(data)
	if err != nil {
		return err
	}
	if n > 0 {
		c.gotPkt = true
	}
	if n < len(data) {
		if ok, err := c.r.tryOpen(data[n:]); err != nil || ok {
			return err
		}
		if c.rest == nil {
			// Room for a whole packet of the usual size; append grows it
			// for a larger one.
			c.rest = make([]byte, 0, max(len(data)-n, packetHeaderSize+c.svc.cfg.BufferSize))
		}
		c.rest = append(c.rest[:0], data[n:]...)
		c.restUse = true
	}
	return nil
}

// releaseIdle drops the cut-packet buffer when no packet was cut since the
// last call (loop, at each keepalive or inactivity tick), so that a
// connection that once received a cut packet does not keep the buffer
// while it idles.
func (c *conn) releaseIdle() {
	if len(c.rest) == 0 && !c.restUse {
		c.rest = nil
	}
	c.restUse = false
}

// healthy reports whether losing this connection should reconnect at once
// (loop, or after its close): it was active — opened and not left passive —
// and either a whole message arrived on it, or it stayed open at least
// ReconnectMax. Otherwise its loss counts as a failed connection attempt
// and the pool's backoff applies (docs/tuning.md, ReconnectMin).
func (c *conn) healthy() bool {
	if !c.active || c.passive {
		return false
	}
	if c.retired {
		return true // retired by us, not a failure of the peer
	}
	return c.gotMsg || c.svc.cfg.Clock.Now().Sub(c.openAt) >= c.svc.cfg.ReconnectMax
}

// onMessage implements readerEvents: a complete message arrived.
func (c *conn) onMessage(h *msgHeader, m Message) {
	c.gotMsg = true
	c.countMessage()
	if isBack(h.flags) && h.recipientIndex != 0 {
		keep := h.flags&ResponsePart != 0
		st, canceled := c.w.takeResponse(h.recipientIndex, h.recipientUnique, keep)
		if st != nil {
			if !keep && st.flags&CloseAfter != 0 {
				c.rc.Close(ErrConnectionClosed)
			}
			if keep {
				st.respondPart(m)
			} else if st.complete(m, nil) {
				st.recycle()
			}
			releaseMsg(m)
			return
		}
		if canceled {
			releaseMsg(m)
			return
		}
	}
	ti := c.svc.cfg.Protocol.lookup(m)
	if ti == nil || ti.handle == nil {
		if c.log.enabled(slog.LevelDebug) {
			c.log.Debug("ipc: no handler; message dropped", "type", fmt.Sprintf("%T", m))
		}
	} else {
		ti.handle(Context{c: c, flags: h.flags, senderIndex: h.senderIndex, senderUnique: h.senderUnique}, m)
	}
	releaseMsg(m)
}

// onHeader implements readerEvents: the response to a request canceled
// while it waited is dropped unread, and the peer is asked to stop sending
// it (CancelRequest for the peer's writer slot).
func (c *conn) onHeader(h *msgHeader) bool {
	if !isBack(h.flags) || h.recipientIndex == 0 {
		return false
	}
	if !c.w.isCanceledWait(h.recipientIndex, h.recipientUnique) {
		return false
	}
	if h.flags&ResponsePart == 0 {
		c.w.takeResponse(h.recipientIndex, h.recipientUnique, false)
	}
	c.w.cancelReqs = append(c.w.cancelReqs, reqID{uint64(h.senderIndex), uint64(h.senderUnique)})
	return true
}

// onCancelRequest implements readerEvents: the peer no longer wants the
// message in our writer slot index-1.
func (c *conn) onCancelRequest(index, unique uint64) { c.w.cancelBySlot(index, unique) }
func (c *conn) onCancelMessage(slot uint32) {
	if c.relay != nil {
		c.relay.canceledOnLoop(slot)
	}
}

// onHello implements readerEvents: the peer grants windows, so the
// messages this end starts from now on obey them (window.go).
func (c *conn) onHello() { c.w.peerHello() }

// onWindow implements readerEvents: the peer granted credit to the message
// in our writer slot.
func (c *conn) onWindow(slot, unique, credit uint64) { c.w.grant(slot, unique, credit) }

// grantWindow implements readerEvents: a Window command to send.
func (c *conn) grantWindow(g windowGrant) { c.w.windows = append(c.w.windows, g) }

// onClose runs once on the loop: every message the connection held is
// resent through its pool or completed with an error.
func (c *conn) onClose(err error) {
	c.closed = true
	c.stopTimers()
	c.mu.Lock()
	c.dead = true
	direct := c.direct
	c.direct = nil
	c.directN.Store(0)
	rawOut := c.rawOut
	c.rawOut = nil
	c.rawOutN.Store(0)
	c.mu.Unlock()
	c.rawIn = nil
	if c.relay != nil {
		c.relay.closeOnLoop()
	}
	c.runCompletions()
	held := c.w.drain()
	cause := err
	switch {
	case cause == nil || errors.Is(cause, reactor.ErrClosed):
		cause = ErrConnectionClosed
	case errors.Is(cause, io.EOF) && c.partial:
		cause = fmt.Errorf("%w: %w", ErrTruncated, cause)
	case errors.Is(cause, io.EOF):
		cause = fmt.Errorf("%w: %w", ErrConnectionClosed, cause) // closed by the peer
	}
	var ce *ConnError
	if !errors.As(cause, &ce) {
		cause = &ConnError{Op: "read", Peer: c.remote, ConnID: c.id, Err: cause}
	}
	if k, ok := c.countClose(cause); ok {
		c.logClosed(k, cause)
	}
	c.r.abortAsync(cause) // window.go
	if c.r.busy() {
		// Messages cut by the close give their decoders (and their
		// segments) back to the loop, once the reader's calls that may be
		// on the stack (a handler's write failed) have returned.
		_ = c.rc.Loop().Execute(c.r.releaseSlots)
	}
	if h := c.svc.cfg.ConnectionStop; h != nil && c.active {
		h(c.info(), cause)
	}
	failRaw(rawOut, cause)
	for _, st := range direct {
		st.fail(ErrConnection, cause)
	}
	if c.pool != nil {
		c.pool.connClosed(c, held, cause)
		return
	}
	for _, st := range held {
		if st.cancelAsked.Load() {
			st.failCanceled()
		} else {
			st.fail(ErrConnection, cause)
		}
	}
	c.svc.connGone(c)
}

func (c *conn) info() ConnInfo {
	i := ConnInfo{Conn: Conn{c}, ID: c.id, Remote: c.remote}
	if c.pool != nil {
		i.Pool = c.pool.name
	}
	return i
}

// cancelDirect removes st from the direct queue if it is still there.
func (c *conn) cancelDirect(st *msgStub) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !st.queued {
		if st.owner == c && !st.completed.Load() {
			st.cancelAsked.Store(true)
		}
		return false
	}
	for i, x := range c.direct {
		if x == st {
			c.direct = append(c.direct[:i], c.direct[i+1:]...)
			c.directN.Add(-1)
			st.queued = false
			return true
		}
	}
	return false
}

// cancelOnLoop cancels st in the writer, if this connection still holds it.
func (c *conn) cancelOnLoop(st *msgStub, kind, cause error) {
	if st.completed.Load() || c.closed {
		return
	}
	if c.w.cancel(st.slot, st, kind, cause) {
		c.pump()
	}
}
