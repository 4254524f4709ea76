package ipc

// Flow control by pausing reads (the per-message windows of the window
// extension are in window.go).
//
// A server answers every request, so a client that keeps sending requests
// and never reads the responses makes the server hold every response it
// cannot write. Once an accepted connection has stopped being writable (its
// socket and the reactor's buffer are full: writer.go) and
// readPauseBacklog or more messages wait to be written on it (in its
// direct queue and its writer), the connection stops reading
// (reactor.Conn.PauseRead): no more requests are taken, the kernel's
// receive buffer fills and TCP back-pressure stops the client. Reading
// resumes when the backlog has fallen to readResumeBacklog. Memory held per
// connection is then about readPauseBacklog responses plus the pipe, instead
// of growing with what the client sends. A client that stays paused is cut
// off by the inactivity timer (InactivityTimeout), since nothing arrives.
//
// Dialed connections never pause for their backlog: their outgoing messages are bounded by
// the pool queue and MaxResponseWait, and two peers that both paused could
// wait for each other forever. A peer that does not speak anything beyond
// SolidFrame's protocol (a C++ service) sees only TCP back-pressure.
//
// Any connection, dialed or accepted, also stops reading while the
// asynchronous sinks (AsyncSink) of its messages without a window hold
// asyncPauseBytes or more, and resumes below half of it: the peer does not
// speak the window extension, so TCP back-pressure is the only way to slow
// it (this stalls the connection's other messages too). Above
// maxUnconsumed bytes held in all its asynchronous sinks, windowed or not,
// the connection closes (ErrUnconsumedOverflow): only a peer that ignores
// its windows gets there.
const (
	readPauseBacklog  = 16
	readResumeBacklog = 4
	asyncPauseBytes   = 4 << 20
	// earlyGrantBelow: a reader enlarges a new message's window beyond
	// W0 only while its asynchronous sinks hold less than this, so that
	// a peer obeying its windows never reaches maxUnconsumed.
	earlyGrantBelow = 32 << 20
)

// maxUnconsumed is the most bytes a connection's asynchronous sinks may
// hold: every reader slot's initial window, plus 64 MiB.
func (c *conn) maxUnconsumed() int64 {
	return int64(c.svc.cfg.MaxReaderSlots)*windowInitial + 64<<20
}

// flowControl pauses or resumes reading the connection according to its
// backlog (accepted connections) and its asynchronous sinks (loop; after
// every pump).
func (c *conn) flowControl() {
	if c.closed {
		return
	}
	sinksFull := c.r.asyncPlain >= asyncPauseBytes
	sinksLow := c.r.asyncPlain < asyncPauseBytes/2
	backlog := int(c.directN.Load()) + c.w.queued
	switch {
	case !c.rc.ReadPaused() && sinksFull:
		if c.rc.PauseRead() {
			c.log.Debug("ipc: reading paused", "async_held", c.r.asyncPlain)
		}
	case !c.rc.ReadPaused() && c.pool == nil && backlog >= readPauseBacklog && !c.rc.Writable():
		if c.rc.PauseRead() {
			c.log.Debug("ipc: reading paused", "backlog", backlog)
		}
	case c.rc.ReadPaused() && sinksLow && (c.pool != nil || backlog <= readResumeBacklog || c.w.credits == 0 && c.rc.Writable()):
		// Also when the writer waits for relay credits with the socket
		// drained: the credits (AckdCount) come in what we do not read.
		c.rc.ResumeRead()
		c.log.Debug("ipc: reading resumed", "backlog", backlog, "async_held", c.r.asyncPlain)
	}
}
