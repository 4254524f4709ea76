package reactor

import "golang.org/x/sys/unix"

// Reading before a large write.
//
// A loop that writes a large message's bytes while small messages travel
// beside it on the same connection keeps a small message that has just
// arrived waiting in the socket for as long as the write takes (on
// loopback the sender's writev also runs the receiver's side of TCP: tens
// of microseconds for a few hundred KiB): the tenth session traced a c=1
// response waiting about 11 µs p50 behind the client loop's bulk writev
// (docs/benchmarks.md, "Head-of-line at c=1, tenth session"). A handler
// about to write such bytes may ask InputPending how many bytes the socket
// holds that gnet has not read, and if there are a few (a small message,
// not the next batch of a large one) hold the write and call
// WakeAfterRead: gnet reads the socket first (its OnData dispatches the
// small message, whose answer then goes ahead of the held bytes), and
// OnWake follows.

// InputPending reports how many bytes c's socket holds that gnet has not
// read yet (loop-only): one ioctl(2) (SIOCINQ) on the socket. It reports 0
// while reads are paused, on a TLS connection (its records may hold no
// whole message), once the connection is closing, and after the peer's end
// of stream with nothing left to read.
func (c *Conn) InputPending() int {
	if c.dead || c.readPaused || c.tls != nil || c.fd <= 0 || c.closeState.Load() == closeAbort {
		return 0
	}
	n, err := unix.IoctlGetInt(c.fd, unix.SIOCINQ)
	if err != nil {
		return 0
	}
	return n
}

// WakeAfterRead schedules one OnWake after gnet has next polled the
// loop's sockets, not before (loop-only): it runs after the OnData of the
// input InputPending saw, or, should no socket of the loop turn out
// readable, after Config.StallPoll at the latest. Called from OnWake, it
// also defers the OnWake that a Wake made meanwhile asks for; a Wake made
// while the deferred one waits coalesces into it. Nothing happens on a
// closed or aborted connection.
func (c *Conn) WakeAfterRead() {
	if c.dead || c.closeState.Load() == closeAbort {
		return
	}
	c.r.stats.readFirst.Add(1)
	for {
		switch c.wake.Load() {
		case wakeIdle:
			if c.wake.CompareAndSwap(wakeIdle, wakeQueued) {
				c.loop.deferWake(c)
				return
			}
		case wakeRunning, wakeAgain:
			// OnWake is running: the wake it asks for is deferred when it
			// returns (wakeOnLoopSpin).
			c.wakeAfterRead = true
			if c.wake.CompareAndSwap(wakeRunning, wakeAgain) || c.wake.Load() == wakeAgain {
				return
			}
		default: // wakeQueued: one OnWake is owed already, and it will check again
			return
		}
	}
}
