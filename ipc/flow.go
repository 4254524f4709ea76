package ipc

// Flow control on accepted connections.
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
// Dialed connections never pause: their outgoing messages are bounded by
// the pool queue and MaxResponseWait, and two peers that both paused could
// wait for each other forever. A peer that does not speak anything beyond
// SolidFrame's protocol (a C++ service) sees only TCP back-pressure.
const (
	readPauseBacklog  = 16
	readResumeBacklog = 4
)

// flowControl pauses or resumes reading an accepted connection according
// to its backlog (loop; after every pump).
func (c *conn) flowControl() {
	if c.pool != nil || c.closed {
		return
	}
	backlog := int(c.directN.Load()) + c.w.queued
	switch {
	case !c.rc.ReadPaused() && backlog >= readPauseBacklog && !c.rc.Writable():
		if c.rc.PauseRead() {
			c.log.Debug("ipc: reading paused", "backlog", backlog)
		}
	case c.rc.ReadPaused() && (backlog <= readResumeBacklog || c.w.credits == 0 && c.rc.Writable()):
		// Also when the writer waits for relay credits with the socket
		// drained: the credits (AckdCount) come in what we do not read.
		c.rc.ResumeRead()
		c.log.Debug("ipc: reading resumed", "backlog", backlog)
	}
}
