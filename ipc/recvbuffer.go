package ipc

// The receive buffer of a loopback connection during a transfer alone.
//
// A loopback connection's receive buffer is fixed at loopbackRecvBuffer
// (256 KiB, writer.go) so that the bulk bytes a reader has not consumed
// yet, which a small message sent behind them waits for, stay few. But it
// also bounds the kernel's window: a sender of a large message alone can
// move at most about that much to the receiving socket before it waits
// for the reader to read and the window update to come back, while it
// has 1 MiB unsent queued (pipeLongNotSent). Measured (docs/benchmarks.md,
// "Stream fields, seventh session"): with 256 KiB a 64 MiB stream field
// alone made the sender's writes partial about every megabyte (gnet
// copying the rest and flushing it on EPOLLOUT, the loop stalling until
// the write poller woke it), and the reader read smaller pieces more
// often; with a longer buffer the partial writes all but vanish and the
// engine spends less CPU per byte.
//
// So once a connection's receiving pipe is long (pipeLongSpan bytes
// without a small message beside a large one, pipe.go) while a large
// message that obeys its window (window.go) arrives, the receive buffer
// becomes pipeLongRecvBuffer. The window bounds what the sender may have
// handed on whatever the buffer's length (MessageWindow alone,
// besideWindow as soon as small messages arrive beside it), so the
// longer buffer adds no bulk bytes ahead of a small message beyond that
// bound; a message without a window (a peer that does not speak the
// extension) keeps the short buffer. The buffer never shrinks back during
// the connection's life: shrinking it below the window the kernel has
// already advertised makes the kernel drop the segments in flight beyond
// it, and the sender resends them only after a retransmission timeout
// (200 ms on loopback; docs/benchmarks.md, "Stream fields, fifth
// session").
const pipeLongRecvBuffer = 2 << 20

// growRecvBuffer lengthens the receive buffer of a loopback connection to
// pipeLongRecvBuffer once its receiving pipe is long while a windowed large
// message arrives (loop; adaptRecv, after every read). Once done it
// returns at its first test.
func (c *conn) growRecvBuffer() {
	if c.recvGrown || !c.recvPipe.long() || c.r.large == 0 || !c.r.windowedLarge() {
		return
	}
	c.recvGrown = true
	c.rc.SetLoopbackRecvBuffer(pipeLongRecvBuffer)
	if testHookPipe != nil {
		testHookPipe(c)
	}
}

// windowedLarge reports whether a message larger than smallMessage that
// obeys its window is arriving (loop).
func (r *reader) windowedLarge() bool {
	for _, s := range r.slots {
		if s != nil && s.large && s.win.on {
			return true
		}
	}
	return false
}
