package ipc

// The pipe below a connection's writer, adapted to what it carries.
//
// Bytes handed to the reactor and the kernel can no longer be overtaken: a
// small message queued now waits behind all of them (docs/benchmarks.md,
// head-of-line). A long pipe is what a single large transfer wants (fewer
// wake-ups to refill it); a short one is what a small message beside a
// large one wants. So a connection's writer has three pipes:
//
//   - while only small messages (at most smallMessage bytes) are under way,
//     the longest (pipeSmallHighWater, pipeSmallLowWater): nothing large
//     can be ahead of a new message, and at high concurrency (a thousand
//     1 KiB calls in flight) a shorter one stalls the connection every few
//     hundred KiB until its loop and the peer's run again
//     (docs/benchmarks.md, "Loop scheduling");
//   - while a large message is under way alone, the Config's
//     (writeHighWater, writeLowWater, writeNotSentLowat);
//   - the short one (pipeShort*) as soon as the writer finishes a small
//     message while a large one is under way; it returns to the others once
//     pipeShortSpan bytes have been written without that happening again.
//     To a peer that grants windows the Config's instead: its reader keeps
//     the large message's window short meanwhile (sendPipeMarks).
//
// The receiving end of the pipe is the peer's business, except on loopback
// connections, whose receive buffer ipc fixes (loopbackRecvBuffer): the
// bytes a reader has not consumed sit there, and a small message waits
// behind them too. The reader shortens it (pipeShortRecv) when a small
// message arrives while a large one is arriving, and restores it after
// pipeShortSpan bytes without that. Meanwhile it also keeps the windows of
// large messages short (besideWindow, window.go): that bounds the bulk
// bytes ahead of a small message wherever they sit, the peer's buffers
// included.
//
// While either end is short the loop also yields its P after each large
// read or write (reactor.Conn.SetInterleaved), so that the goroutines the
// small messages wake run beside the transfer.
const (
	pipeSmallHighWater = 1 << 20
	pipeSmallLowWater  = 256 << 10
	pipeShortHighWater = 64 << 10
	pipeShortLowWater  = 16 << 10
	pipeShortNotSent   = 32 << 10
	pipeShortRecv      = 64 << 10
	pipeShortSpan      = 4 << 20
	smallMessage       = 16 << 10
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
// more bytes without an interleaved small message.
type shortSpan struct {
	on   bool
	left int
}

// update notes n bytes moved, hit if they completed a small message beside
// a large one, and reports whether the end changed between long and short.
func (s *shortSpan) update(hit bool, n int) (changed bool) {
	if hit {
		s.left = pipeShortSpan
		changed = !s.on
		s.on = true
		return changed
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
	pipeSmall              // only small messages under way: the long pipe
	pipeShort              // small messages beside a large one: the short pipe
)

// adaptPipe chooses the connection's sending pipe after n bytes were
// written (loop; pump): short while small messages are interleaved with a
// large one (sendPipe), the Config's while a large message is under way
// alone, long (pipeSmallHighWater) while only small messages are.
func (c *conn) adaptPipe(n int) {
	hit := c.w.interleaved
	c.w.interleaved = false
	c.sendPipe.update(hit, n)
	c.w.shortPipe = c.sendPipe.on
	mode := pipeSmall
	switch {
	case c.sendPipe.on:
		mode = pipeShort
	case c.w.largeUnderWay():
		mode = pipeLarge
	}
	if mode == c.sendMode {
		return
	}
	c.sendMode = mode
	c.rc.SetPipe(sendPipeMarks(mode, c.w.peerWindows))
	c.rc.SetInterleaved(c.sendPipe.on || c.recvPipe.on)
}

// sendPipeMarks returns the reactor marks (reactor.Conn.SetPipe) of a
// sending pipe mode; zero high and low mean the Config's. Beside small
// messages the pipe is the short one, unless the peer grants windows: its
// reader then bounds the large message's bytes in flight itself
// (besideWindow, window.go), wherever they sit, and a short pipe on top
// only makes the sender stall and wait for wake-ups more often (measured:
// fewer small calls and a slower bulk flow; docs/benchmarks.md,
// "Head-of-line, fourth session").
func sendPipeMarks(mode uint8, peerWindows bool) (high, low, notSent int) {
	switch {
	case mode == pipeShort && !peerWindows:
		return pipeShortHighWater, pipeShortLowWater, pipeShortNotSent
	case mode == pipeSmall:
		return pipeSmallHighWater, pipeSmallLowWater, writeNotSentLowat
	default:
		return 0, 0, writeNotSentLowat
	}
}

// adaptRecv chooses the connection's receive buffer after n bytes were
// read (loop; onData).
func (c *conn) adaptRecv(n int) {
	hit := c.r.interleaved
	c.r.interleaved = false
	switch {
	case !c.recvPipe.update(hit, n):
	case c.recvPipe.on:
		c.rc.SetLoopbackRecvBuffer(pipeShortRecv)
		c.rc.SetInterleaved(true)
		c.r.beside = true
	default:
		c.rc.SetLoopbackRecvBuffer(0)
		c.rc.SetInterleaved(c.sendPipe.on || c.recvPipe.on)
		c.r.beside = false
	}
}

// testHookFlushMidFeed, if set by a test, runs at each flushMidFeed of an
// open connection.
var testHookFlushMidFeed func()

// flushMidFeed writes the connection's output while its reader is in the
// middle of a long input beside a large message (reader.feed, after a
// dispatch), and reports whether the connection is still open (loop). A
// small message's response, the next request of a caller the dispatch
// woke, or window credit would otherwise wait until the loop had decoded
// the rest of the input (up to a read buffer of bulk bytes) before the
// pump after the feed.
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
