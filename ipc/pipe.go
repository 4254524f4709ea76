package ipc

// The pipe below a connection's writer, adapted to what it carries.
//
// Bytes handed to the reactor and the kernel can no longer be overtaken: a
// small message queued now waits behind all of them (docs/benchmarks.md,
// head-of-line). A long pipe is what a single large transfer wants (fewer
// wake-ups to refill it); a short one is what a small message beside a
// large one wants. So a connection's writer has four pipes:
//
//   - while only small messages (at most smallMessage bytes) are under way,
//     pipeSmallHighWater and pipeSmallLowWater: nothing large can be ahead
//     of a new message, and at high concurrency (a thousand 1 KiB calls in
//     flight) a shorter one stalls the connection every few hundred KiB
//     until its loop and the peer's run again (docs/benchmarks.md, "Loop
//     scheduling");
//   - while a large message is under way alone, the Config's
//     (writeHighWater, writeLowWater, writeNotSentLowat);
//   - the long one (pipeLong*) once that has lasted pipeLongSpan bytes
//     without a small message finishing beside a large one: a transfer
//     alone that long is likely to stay alone. The kernel then holds up to
//     pipeLongNotSent unsent bytes (gnet's buffer keeps the Config's
//     marks: a longer one only made gnet copy and allocate more), the
//     writer hands the socket pipeLongBatch bytes per write and a pump
//     turn writes up to pipeLongQuantum: a third of the writes and 25–40 %
//     less CPU per byte for a stream field alone (docs/benchmarks.md,
//     "Stream fields, fifth session"). The price is paid once per quiet
//     spell: the first small message queued after it waits behind up to
//     about 1 MiB more than with the Config's pipe (under half a
//     millisecond on loopback), and its completion makes the pipe short at
//     once;
//   - the short one (pipeShort*) as soon as the writer finishes a small
//     message while a large one is under way; it returns to the others once
//     pipeShortSpan bytes have been written without that happening again.
//     To a peer that grants windows the Config's instead: its reader keeps
//     the large message's window short meanwhile (sendPipeMarks), and the
//     writer sends each of its grants in one write of 64 KiB packets
//     (longPump, packetSize).
//
// The receiving end of the pipe is the peer's business, except on loopback
// connections, whose receive buffer ipc fixes (loopbackRecvBuffer): the
// bytes a reader has not consumed sit there, and a small message waits
// behind them too. The reader notes when a small message arrives while a
// large one is arriving (recvPipe, short for pipeShortSpan bytes after
// that) and keeps the windows of large messages short meanwhile
// (besideShare, window.go): that bounds the bulk bytes ahead of a small
// message wherever they sit, the peer's buffers included. It leaves the
// receive buffer as it is: until the fifth session it shrank it to 64 KiB
// then, but a receive buffer shrunk below the window already advertised
// makes the kernel drop the segments in flight beyond it, and the sender
// resends them only after a retransmission timeout (200 ms on loopback):
// in six alternated head-of-line runs each, 2–13 receive-queue drops per
// run and small calls stalled for 207–224 ms with the shrink, against no
// drop in five runs of six and no stall over 29 ms without, and a lower
// small-call p99 without (docs/benchmarks.md, "Stream fields, fifth
// session"). It lengthens the buffer once, for good, when a large message
// from a peer that obeys windows has arrived alone for pipeLongSpan bytes
// (growRecv, recvLongBuffer): a transfer alone through the short buffer
// makes the receiving loop do the sender's kernel work (docs/benchmarks.md,
// "64 MiB plain messages, seventh session"), and beside small messages
// the windows, not the buffer, bound the bulk bytes ahead of them.
//
// While either end is short the loop also yields its P after each large
// read or write (reactor.Conn.SetInterleaved), so that the goroutines the
// small messages wake run beside the transfer. And while a large message
// is under way in either direction the connection is bulk
// (reactor.Conn.SetBulk): the loop's busy poll after its transfers gives
// way when the CPU is contended, where a poll after small messages only
// never does (docs/benchmarks.md, "Polling while bytes stream (sixth
// session)").
const (
	pipeSmallHighWater = 1 << 20
	pipeSmallLowWater  = 256 << 10
	pipeShortHighWater = 64 << 10
	pipeShortLowWater  = 16 << 10
	pipeShortNotSent   = 32 << 10
	pipeShortSpan      = 4 << 20
	smallMessage       = 16 << 10

	recvLongBuffer = 2 << 20

	pipeLongSpan    = 16 << 20
	pipeLongNotSent = 1 << 20
	pipeLongBatch   = 256 << 10
	pipeLongQuantum = 1 << 20
)

// largeUnderWay reports whether a message larger than smallMessage has
// started and not finished: a slot in the write queue whose body is under
// way with more than smallMessage bytes written (loop). It is called on
// every small message's completion and every pump, so it reads a counter
// (largeBodies) instead of scanning the queue.
func (w *writer) largeUnderWay() bool { return w.largeBodies > 0 }

// setLarge counts or uncounts slot s in largeBodies. Every change of a
// slot's membership of the write queue, phase or written bytes calls it:
// writeChunk (bytes written, header done), block and grant (window.go),
// park and unpark (relay_writer.go), unqueue and freeSlot (finish, cancel,
// encode failure); drain resets the count.
func (w *writer) setLarge(s *wslot, on bool) {
	if s.large == on {
		return
	}
	s.large = on
	if on {
		w.largeBodies++
	} else {
		w.largeBodies--
	}
}

// shortSpan is the state of one end of the pipe: short, and for how many
// more bytes without an interleaved small message; and how many bytes have
// moved since the last one (quiet, counted up to pipeLongSpan).
type shortSpan struct {
	on    bool
	left  int
	quiet int
}

// long reports whether pipeLongSpan bytes have moved since a small message
// last finished beside a large one (or since the connection opened).
func (s *shortSpan) long() bool { return s.quiet >= pipeLongSpan }

// update notes n bytes moved, hit if they completed a small message beside
// a large one, and reports whether the end changed between long and short.
func (s *shortSpan) update(hit bool, n int) (changed bool) {
	if hit {
		s.left = pipeShortSpan
		s.quiet = 0
		changed = !s.on
		s.on = true
		return changed
	}
	if s.quiet < pipeLongSpan {
		s.quiet += n
	}
	if s.on {
		if s.left -= n; s.left <= 0 {
			s.on = false
			return true
		}
	}
	return false
}

// Sending pipe modes (conn.sendMode).
const (
	pipeLarge uint8 = iota // a large message under way, alone: the Config's pipe
	pipeSmall              // only small messages under way: pipeSmallHighWater
	pipeShort              // small messages beside a large one: the short pipe
	pipeLong               // a large message alone for pipeLongSpan bytes: the long pipe
)

// adaptPipe chooses the connection's sending pipe after n bytes were
// written (loop; pump): short while small messages are interleaved with a
// large one (sendPipe), the Config's while a large message is under way
// alone, the long one once that has lasted pipeLongSpan bytes,
// pipeSmallHighWater while only small messages are under way. While the
// sending end is short a loopback connection's congestion control is the
// kernel's default, loopbackCongestion (writer.go) otherwise.
func (c *conn) adaptPipe(n int) {
	c.rc.SetBulk(c.w.largeUnderWay() || c.r.large > 0)
	hit := c.w.interleaved
	c.w.interleaved = false
	c.sendPipe.update(hit, n)
	c.w.noteWrite(c.sendPipe.on)
	c.r.sendBeside = c.sendPipe.on // window.go, besideShare
	if c.sendPipe.on != c.sendCCDef {
		c.sendCCDef = c.sendPipe.on
		c.rc.SetLoopbackCongestion(!c.sendPipe.on)
	}
	mode := pipeSmall
	switch {
	case c.sendPipe.on:
		mode = pipeShort
	case c.w.largeUnderWay() && c.sendPipe.long():
		mode = pipeLong
	case c.w.largeUnderWay():
		mode = pipeLarge
	}
	if mode == c.sendMode {
		return
	}
	c.sendMode = mode
	c.rc.SetPipe(sendPipeMarks(mode, c.w.peerWindows))
	c.rc.SetInterleaved(c.sendPipe.on || c.recvPipe.on)
	if testHookPipe != nil {
		testHookPipe(c)
	}
}

// testHookPipe, if set by a test, runs on the loop after a connection's
// sending pipe (sendMode) or receive buffer (recvPipe) changed.
var testHookPipe func(c *conn)

// sendPipeMarks returns the reactor marks (reactor.Conn.SetPipe) of a
// sending pipe mode; zero high and low mean the Config's. Beside small
// messages the pipe is the short one, unless the peer grants windows: its
// reader then bounds the large message's bytes in flight itself
// (besideShare, window.go), wherever they sit, and a short pipe on top
// only makes the sender stall and wait for wake-ups more often (measured:
// fewer small calls and a slower bulk flow; docs/benchmarks.md,
// "Head-of-line, fourth session").
func sendPipeMarks(mode uint8, peerWindows bool) (high, low, notSent int) {
	switch {
	case mode == pipeShort && !peerWindows:
		return pipeShortHighWater, pipeShortLowWater, pipeShortNotSent
	case mode == pipeSmall:
		return pipeSmallHighWater, pipeSmallLowWater, writeNotSentLowat
	case mode == pipeLong:
		return 0, 0, pipeLongNotSent
	default:
		return 0, 0, writeNotSentLowat
	}
}

// adaptRecv notes n bytes read (loop; onData): while small messages arrive
// beside a large one the reader keeps large messages' windows short
// (r.beside) and the loop yields after large reads; a large message
// arriving alone for long lengthens the receive buffer once (growRecv).
func (c *conn) adaptRecv(n int) {
	c.rc.SetBulk(c.w.largeUnderWay() || c.r.large > 0)
	hit := c.r.interleaved
	c.r.interleaved = false
	changed := c.recvPipe.update(hit, n)
	c.growRecv(n)
	if !changed {
		return
	}
	c.rc.SetInterleaved(c.sendPipe.on || c.recvPipe.on)
	c.r.beside = c.recvPipe.on
	// The fair share (besideShare, window.go) starts anew with each spell.
	c.r.besideMax, c.r.besidePrev = 0, 0
	c.r.besideSeveral = false
	c.r.besideExtra, c.r.besideCalmN = 0, 0
	if testHookPipe != nil {
		testHookPipe(c)
	}
}

// growRecv lengthens a loopback connection's receive buffer from
// loopbackRecvBuffer to recvLongBuffer (at most half the message window)
// the first time one large message has been arriving alone (no other large
// one, no small one beside it) for pipeLongSpan bytes, n being the bytes
// of this read (loop; adaptRecv), if the peer's messages obey this end's
// windows. Two large messages arriving at once (cmd/bench -mode bulk keeps
// two under way) kept the short buffer: with the longer one they moved
// 0.29× a raw TCP stream against 0.36× in five alternated rounds.
// It never shrinks it again: a receive buffer shrunk below the window
// already advertised drops the segments in flight (see above). Half the
// window, because the kernel advertises up to about twice SO_RCVBUF on
// loopback, and the sender's own pipe comes on top: with the whole window
// in the buffer, a transfer alone ran out of credit and its writer left
// the write queue (slotBlocked) until the next grant.
//
// A transfer alone through a 256 KiB receive buffer keeps the window
// nearly closed: the sender's socket holds the bytes the window refuses,
// and each read that opens it makes the receiving loop transmit them
// (the window update is processed, and the queued segments sent and
// delivered, inside the reader's system call), so the receiver does the
// sender's kernel work too and the sender idles waiting for room
// (docs/benchmarks.md, "64 MiB plain messages, seventh session"). With
// the longer buffer the sender's own write sends them. Beside small
// messages the windows bound what the longer buffer can hold ahead of
// them (besideShare, window.go), which is why a peer that does not obey
// windows (a C++ SolidFrame service) keeps the short buffer; the first
// small message after a transfer alone may wait behind up to the longer
// buffer of bulk bytes once, as behind the long sending pipe.
func (c *conn) growRecv(n int) {
	if c.recvGrown {
		return
	}
	if c.r.large != 1 || c.recvPipe.on {
		c.recvAlone = 0
		return
	}
	if c.recvAlone += n; c.recvAlone < pipeLongSpan || c.r.msgWindow <= 0 || !c.r.helloSeen {
		return
	}
	c.recvGrown = true
	size := max(loopbackRecvBuffer, min(recvLongBuffer, c.r.msgWindow/2))
	if testHookRecvBuffer != nil {
		testHookRecvBuffer(size)
	}
	c.rc.SetLoopbackRecvBuffer(size)
	if testHookPipe != nil {
		testHookPipe(c)
	}
}

// testHookRecvBuffer, if set by a test before its services start, runs on
// the loop with the size growRecv asks of the reactor.
var testHookRecvBuffer func(n int)

// pumpBatch returns the write batch a pump fills next (loop): a
// pipeLongBatch buffer while a large message is under way on the long pipe
// or to a peer that grants windows (four 64 KiB packets per write), the
// loop's WriteBatch buffer otherwise. To a peer with windows the window,
// not the batch, bounds what a write of the large message carries beside
// small messages: each grant (besideGrantStep, window.go) goes out in one
// write, where a WriteBatch held all of a 64 KiB grant but its last bytes,
// a second write of their own (docs/benchmarks.md, "Credit beside small
// calls, ninth session"). To a peer without windows (a C++ SolidFrame
// service) the short pipe's marks bound the bulk bytes ahead of a small
// message, and a write never exceeds WriteBatch beside them.
func (c *conn) pumpBatch() []byte {
	if c.longPump() {
		return c.ls.takeLongBatch()
	}
	return c.ls.takeBatch()
}

// pumpQuantum is what one pump turn may write before the loop serves its
// other connections (loop): pipeLongQuantum under the same conditions as
// the long batch (pumpBatch), DefaultPumpQuantum otherwise.
func (c *conn) pumpQuantum() int {
	if c.longPump() {
		return pipeLongQuantum
	}
	return DefaultPumpQuantum
}

// longPump reports whether a pump writes the long batch and quantum: the
// sending pipe is the long one, or a large message is under way to a peer
// that grants windows (loop).
func (c *conn) longPump() bool {
	return c.sendMode == pipeLong || (c.w.peerWindows && c.w.largeUnderWay())
}

// testHookFlushMidFeed, if set by a test, runs at each flushMidFeed of an
// open connection.
var testHookFlushMidFeed func()

// flushMidFeed writes the connection's output while its reader is in the
// middle of a long input beside a large message (reader.feed, after a
// dispatch), and reports whether the connection is still open (loop). A
// small message's response or the next request of a caller the dispatch
// woke would otherwise wait until the loop had decoded the rest of the
// input (up to a read buffer of bulk bytes) before the pump after the
// feed. The reader calls it through conn.flushWaiting, which skips it
// when only bulk chunks or window credit wait (those go with the pump
// after the feed), and at most once per midFeedFlushEvery bytes of input
// after the feed's first dispatch (reader.go).
func (c *conn) flushMidFeed() bool {
	if c.closed {
		return false
	}
	if testHookFlushMidFeed != nil {
		testHookFlushMidFeed()
	}
	c.pump()
	return !c.closed
}
