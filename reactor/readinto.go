package reactor

import (
	"io"
	"os"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Reading straight into the handler's memory.
//
// gnet reads a readable socket into its loop's buffer (ReadBufferCap) and
// presents those bytes to OnData, which copies what it keeps. For a large
// value whose final array already exists (ipc: a []byte field whose array
// the receive budget lent), that is a second copy of every byte. ReadInto
// lets the handler name the memory the connection's next bytes belong in:
// once OnData (or OnReadInto) has returned and gnet holds none of the
// connection's input, the loop reads the socket itself, without blocking,
// with one readv(2) into the handler's buffers, and reports how many bytes
// landed with ReadIntoHandler.OnReadInto. The handler may ask again from
// there; the loop goes on while data comes, up to readIntoQuantum bytes
// per readiness event (then gnet's level-triggered poll brings it back, so
// other connections of the loop get their turn), and stops at EAGAIN. The
// request then stands: the busy poll that follows (spin.go) makes the read
// itself when the connection's next input arrives while it polls (after
// gathering, as for gnet's read; or when its budget runs out with input
// queued), so that input goes straight into the handler's memory instead of
// through gnet's buffer, and polling goes on. A readiness gnet handles
// first (no spin: BusyPoll disabled, a backoff, another socket ready) is
// gnet's read as before: its bytes reach OnData, and the request lapses.
//
// Plain TCP only: a TLS connection's bytes must be decrypted, and ReadInto
// reports false there. No direct read happens while reads are paused
// (PauseRead), after Abort, or once the connection is dead. While small
// messages travel beside a large one (SetInterleaved) the loop reads
// directly at most ReadBufferCap bytes per readiness event, as much as one
// gnet read, so that its task turns come as often as with gnet's reads
// (which the head-of-line work tuned, docs/benchmarks.md, "Direct reads
// into large values"), and the busy poll makes no direct read there
// (spin.go: it gathers only for a connection that is not interleaved;
// making the standing read there as well measured no better,
// docs/benchmarks.md, "Direct reads beside small messages, thirteenth
// session"). What is read directly there is the handler's choice (ipc
// plans only the rest of a large value's open packet and the packets
// predicted after it, in the same read).
//
// On an interleaved connection the readiness that brings a large value's
// next packet is gnet's: its read takes everything the socket holds into
// the loop's buffer, and the value's bytes are copied out of it. So there
// the handler may ask that gnet's next read be short (ShortenNextRead: ipc
// asks for room for the small messages in front of the value's next packet
// and its headers), and a direct read that met EAGAIN asks it itself
// (ShortReadBytes): the loop's next gnet read, of whichever connection,
// takes no more than that; OnData then sees the
// front of the input (the packet opens) and the handler's next ReadInto
// takes the rest straight from the socket in the same readiness event. The
// loop's read buffer gets its full length back when the next OnTraffic
// begins. End of stream and read errors close the connection through gnet,
// as gnet's own read does (OnClose gets an error wrapping io.EOF or the
// system call's error).

// ReadIntoHandler is implemented by a Handler that uses Conn.ReadInto.
type ReadIntoHandler interface {
	// OnReadInto runs on the loop after a direct read of n > 0 bytes: the
	// first n bytes of the buffers given to ReadInto (filling each before
	// the next) hold the connection's next input, in order. They count as
	// received input like OnData's, and are not presented to OnData. The
	// handler may call ReadInto again.
	OnReadInto(c *Conn, n int)
}

// readIntoQuantum bounds the bytes a loop reads directly for one
// connection per readiness event.
const readIntoQuantum = 4 << 20

// readInto is a connection's pending direct read (loop-owned).
type readInto struct {
	on  bool
	n   int                     // buffers in iov
	iov [MaxReadIntoBufs][]byte // the buffers, in order, none empty
}

// MaxReadIntoBufs is the most buffers one direct read fills
// (ReadIntoBufs): unix.Readv builds up to 8 iovecs without allocating.
const MaxReadIntoBufs = 8

// ReadInto asks the loop to read c's next input straight from the socket
// into dst and then tail (loop-only; from OnData or OnReadInto of a Handler
// that implements ReadIntoHandler). The read happens once the handler
// returns and gnet holds none of c's input, at most once per call (a read
// that met EAGAIN is made by the loop's next busy poll when input comes
// then, see above); the request lapses at the next OnData or OnReadInto,
// or when the connection closes. The buffers must stay
// valid until then. It reports false, and reads nothing, on a TLS
// connection, when the handler does not implement ReadIntoHandler, or when
// dst is empty. On an interleaved connection (SetInterleaved) the loop reads
// at most ReadBufferCap bytes directly per readiness event.
func (c *Conn) ReadInto(dst, tail []byte) bool {
	bufs := [2][]byte{dst, tail}
	return c.ReadIntoBufs(bufs[:])
}

// ReadIntoBufs is ReadInto with up to MaxReadIntoBufs buffers, filled in
// order (one readv(2)); empty ones are skipped, those beyond the bound
// dropped. It reports false when bufs[0] is empty, and as ReadInto.
func (c *Conn) ReadIntoBufs(bufs [][]byte) bool {
	if c.tls != nil || c.dead || len(bufs) == 0 || len(bufs[0]) == 0 {
		return false
	}
	if _, ok := c.r.h.(ReadIntoHandler); !ok {
		return false
	}
	c.into = readInto{on: true}
	for _, b := range bufs[:min(len(bufs), MaxReadIntoBufs)] {
		if len(b) > 0 {
			c.into.iov[c.into.n] = b
			c.into.n++
		}
	}
	return true
}

// readIntoOnLoop performs the pending direct reads after OnData (inside
// gnet's OnTraffic, plain TCP). It returns gnet.Close when a read failed or
// the peer closed, the error having been recorded for OnClose.
func (c *Conn) readIntoOnLoop() gnet.Action {
	h, _ := c.r.h.(ReadIntoHandler)
	budget := readIntoQuantum
	if c.interleaved {
		budget = min(budget, c.r.cfg.ReadBufferCap)
	}
	for c.into.on && budget > 0 {
		if c.dead || c.readPaused || c.closeState.Load() == closeAbort || c.gc.InboundBuffered() > 0 {
			break
		}
		n, err := unix.Readv(c.fd, c.into.iov[:c.into.n])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			// The request stands: the loop's next spin reads the
			// socket's next input straight into it when that comes
			// first (readIntoSpin), not gnet into its buffer. On an
			// interleaved connection, where the spin makes no direct
			// read, gnet's next read is short, so that the handler can
			// ask again for the rest of that input.
			if c.bulk && c.tls == nil {
				c.loop.gather = c
			}
			if c.interleaved {
				c.ShortenNextRead(ShortReadBytes)
			}
			return gnet.None
		}
		c.into = readInto{}
		if err != nil || n == 0 {
			if n == 0 && err == nil {
				err = io.EOF
			}
			c.failRead(os.NewSyscallError("read", err))
			return gnet.Close
		}
		budget -= n
		c.r.stats.directReads.Add(1)
		c.r.stats.directBytes.Add(uint64(n))
		h.OnReadInto(c, n)
		c.yieldAfter(n)
		if c.dead {
			return gnet.None
		}
		if c.closeState.Load() == closeAbort {
			return gnet.Close
		}
	}
	c.into = readInto{}
	if c.readPaused && !c.dead {
		c.applyReadPause() // the handler may have paused in OnReadInto
	}
	return gnet.None
}

// ShortReadBytes is the length of gnet's next read after a direct read on
// an interleaved connection met EAGAIN: the open packet's rest comes
// first, and the handler asks for the bulk of it directly.
const ShortReadBytes = 4 << 10

// ShortenNextRead makes the next gnet read on c's loop, of whichever of its
// connections is readable first, take at most n bytes (loop-only; from
// OnData or OnReadInto; at least 1, at most ReadBufferCap), so that a
// handler that reads a large value straight from the socket (ReadInto)
// sees the front of c's next input in OnData and can ask for the rest in
// the same readiness event, instead of gnet reading all the socket holds
// into its buffer. The loop's read buffer gets its full length
// (ReadBufferCap) back when the next OnTraffic begins. It reports false,
// and changes nothing, on a TLS connection, on a dead one, or when gnet's
// read buffer cannot be found (see gnetReadBuf).
func (c *Conn) ShortenNextRead(n int) bool {
	if c.tls != nil || c.dead || c.gc == nil {
		return false
	}
	return c.loop.shortenRead(c.gc, max(n, 1))
}

// readIntoSpin is the loop's spin finding input (ready: n events in
// spinEvents; n == 0: the spin's budget ran out) while gather's direct read
// still stands after an EAGAIN (loop-only). When gather's socket is ready
// with input and nothing else (no hang-up or error) and holds some, it
// does the direct read there, before gnet would read that input into its
// buffer, and reports true: the spin goes on. Otherwise (no request,
// another socket ready, a hang-up) it reports false and the spin ends as
// before. A failed read or an Abort during OnReadInto closes the
// connection through the loop's task queue (the spin runs inside
// OnTraffic, where a connection cannot be closed directly).
func (l *Loop) readIntoSpin(gather *Conn, n int) bool {
	c := gather
	if c == nil || c.dead || !c.into.on || c.tls != nil {
		return false
	}
	if n > 0 {
		found := false
		for _, ev := range l.spinEvents[:n] {
			if ev.Fd == int32(c.fd) {
				if ev.Events != unix.EPOLLIN {
					return false
				}
				found = true
			}
		}
		if !found {
			return false
		}
	} else if q, err := unix.IoctlGetInt(c.fd, unix.SIOCINQ); err != nil || q == 0 {
		return false
	}
	c.r.stats.spinDirectReads.Add(1)
	if c.readIntoOnLoop() != gnet.None || c.closeState.Load() == closeAbort {
		_ = c.r.execute(c.el, c.abortTask)
		return false
	}
	return !c.dead
}

// failRead records err as the reason the connection closes, unless one was
// recorded before, and drops pending output (loop-only, before returning
// gnet.Close from OnTraffic: a failed direct read, inbound overflow).
func (c *Conn) failRead(err error) {
	c.mu.Lock()
	if c.closeErr == nil {
		c.closeErr = err
	}
	c.noMore = true
	c.dropQueueLocked()
	c.closeState.Store(closeAbort)
	c.mu.Unlock()
}
