package reactor

import "golang.org/x/sys/unix"

// Wakes that OnWake asks for again.
//
// gnet runs the tasks submitted to a loop (Execute, Wake) from its urgent
// queue until that queue is empty, and polls its sockets only then. A
// handler whose OnWake does a bounded amount of work and calls Wake again
// to go on (ipc's writer pump: a quantum of output, then Wake) therefore
// keeps its loop away from its sockets for as long as it has work and the
// socket stays writable: nothing is read on any connection of the loop. A
// client sending a long stream to a receiver faster than its source read
// nothing for the whole message, not even the answers to its pings, and
// closed the connection with ipc.ErrDeadPeer after DeadPeerTimeout (ninth
// session, docs/testing.md).
//
// So a Wake made while the connection's OnWake runs is not always
// submitted at once: when OnWake returns after the loop has submitted
// rewakeCheckEvery such wakes in a row without gnet polling, the loop
// polls its connections' sockets without blocking. If any of them (reads
// not paused) is readable or hung up, the wake is deferred until gnet has
// polled: it is submitted by the loop's next OnTraffic, OnOpen or OnClose,
// which gnet runs for that input before its tasks, or at the latest by a
// StallPoll timer. Otherwise, and between the checks, it is submitted at
// once, as before. Every connection of the loop is checked,
// not only the waking one: a writer streaming to a fast receiver would
// otherwise keep the loop from reading the other connections it serves
// (TestRewakeLetsOtherConnRead).

// Conn.wake states.
const (
	wakeIdle    = iota // no wake pending
	wakeQueued         // a wake task is submitted, handed to the spin or deferred
	wakeRunning        // OnWake is running
	wakeAgain          // OnWake is running and Wake was called meanwhile
)

// submitWake hands c's wake to the loop's spin or submits its task; c.wake
// is wakeQueued (any goroutine).
func (c *Conn) submitWake() {
	if l := c.loop; l != nil && l.handOff(c) {
		return // the loop is busy polling: it runs the wake itself
	}
	if c.r.execute(c.el, c.wakeTask) != nil {
		c.wake.Store(wakeIdle)
	}
}

// rewakeOnLoop submits the wake asked for during OnWake, or defers it while
// a socket of the loop has input gnet has not read yet (loop-only; c.wake
// is wakeQueued).
func (c *Conn) rewakeOnLoop() {
	if c.dead || c.closeState.Load() == closeAbort {
		c.wake.Store(wakeIdle)
		return
	}
	l := c.loop
	l.chained++
	if l.chained >= rewakeCheckEvery && l.inputPending() {
		l.deferWake(c)
		return
	}
	c.submitWake()
}

// rewakeCheckEvery is how many wakes asked for during OnWake a loop submits
// in a row, without gnet having polled in between, before it looks for
// input and defers the next one (Loop.chained). A writer pump goes on a
// quantum (up to 1 MiB) per wake, so a loop reads its sockets at least
// once per eight quanta; checking at every wake made a lone stream pay a
// read and a task round trip per quantum for the window grants arriving
// on its socket: the stream field lost about 15 % of its rate (alternated
// with and without, ninth session, docs/testing.md).
const rewakeCheckEvery = 8

// inputPending reports whether a socket of the loop has input (or a
// hang-up) that gnet has not read yet (loop-only). gnet's epoll set cannot be peeked: its
// wake-up eventfd is edge-triggered, and a peek would take the edge that
// tells gnet to run its tasks; poll(2) on the loop's own sockets takes
// nothing from gnet. Connections whose reads are paused have none to wait
// for. The cost is one poll(2) over the loop's connections per chained
// wake, that is per pump quantum of output (about 1 MiB).
func (l *Loop) inputPending() bool {
	fds := l.peek[:0]
	for o := range l.conns {
		if o.readPaused || o.dead || o.fd <= 0 {
			continue
		}
		fds = append(fds, unix.PollFd{Fd: int32(o.fd), Events: unix.POLLIN | unix.POLLRDHUP})
	}
	l.peek = fds
	if len(fds) == 0 {
		return false
	}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0
}

// deferWake holds c's wake until gnet has polled (loop-only).
func (l *Loop) deferWake(c *Conn) {
	l.deferred = append(l.deferred, c)
	if l.deferTimer == nil {
		l.deferTimer = l.pollAfter(l.r.cfg.StallPoll, l.runDeferredFn)
	}
}

// runDeferred submits the deferred wakes (loop-only): from OnTraffic,
// OnOpen and OnClose, which gnet runs after it polled, and from the
// StallPoll timer.
func (l *Loop) runDeferred() {
	if l.deferTimer != nil {
		l.deferTimer.Stop()
		l.deferTimer = nil
	}
	list := l.deferred
	l.deferred = l.deferSpare[:0]
	for i, c := range list {
		list[i] = nil
		if c.dead {
			c.wake.Store(wakeIdle)
			continue
		}
		c.submitWake()
	}
	l.deferSpare = list[:0]
}
