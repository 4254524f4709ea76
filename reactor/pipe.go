package reactor

// Per-connection pipe length.
//
// HighWater, LowWater and NotSentLowat (Config) are the defaults of every
// connection. A connection's owner may shorten or lengthen its own pipe
// while it runs (SetPipe): ipc keeps a connection's pipe long while one
// large message flows alone (throughput) and short while small messages
// are interleaved with a large one (every byte below the writer is a byte
// a newly queued small message waits behind; docs/benchmarks.md).

// SetPipe sets c's outbound marks (loop-only): Writable is false at high
// bytes (gnet's buffer plus the Send queue), a stalled connection resumes at
// low, and the kernel keeps at most about notSent bytes unsent
// (TCP_NOTSENT_LOWAT; zero or negative leaves it as it is). Zero high or
// low restores the Config value; low must be below high or the Config
// values are kept. A connection above its new high mark stalls at its next
// Writable check; bytes already handed on are not taken back.
func (c *Conn) SetPipe(high, low, notSent int) {
	if c.dead {
		return
	}
	if high <= 0 || low <= 0 || low >= high {
		high, low = 0, 0
	}
	c.highWater, c.lowWater = high, low
	if notSent > 0 {
		setNotSentLowat(c.fd, notSent)
	}
}

// highMark is c's HighWater: SetPipe's, or the Config's (loop-only).
func (c *Conn) highMark() int {
	if c.highWater > 0 {
		return c.highWater
	}
	return c.r.cfg.HighWater
}

// lowMark is c's LowWater: SetPipe's, or the Config's (loop-only).
func (c *Conn) lowMark() int {
	if c.lowWater > 0 {
		return c.lowWater
	}
	return c.r.cfg.LowWater
}

// SetLoopbackRecvBuffer sets the receive buffer (SO_RCVBUF) of c, if its
// peer is a loopback address, to n bytes, and the largest window it
// advertises (TCP_WINDOW_CLAMP) to that buffer (recvwindow.go); zero or
// negative restores Config.LoopbackRecvBuffer (loop-only). Other
// connections keep the kernel's autotuning. ipc lengthens it for a large
// message arriving alone: the bytes a reader has not consumed yet sit in
// this buffer, and a small message sent behind them waits for all of them.
func (c *Conn) SetLoopbackRecvBuffer(n int) {
	if c.dead || !c.loopback {
		return
	}
	if n <= 0 {
		n = c.r.cfg.LoopbackRecvBuffer
	}
	setRecvBuffer(c.fd, n)
	setWindowClamp(c.fd)
}
