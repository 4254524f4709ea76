package reactor

import (
	"context"
	"io"
	"net"
	"sync"
	"time"
)

// tlsPipe is the net.Conn a crypto/tls Conn runs over. It has two modes.
//
// Handshake mode (blocking): the handshake goroutine reads what the loop fed
// (OnTraffic copies ciphertext into in and signals) and its writes (the
// handshake flights) enter the connection's ordered Send queue, so they reach
// the socket in order with the "handshake done" Execute that follows them.
//
// Record mode (non-blocking, loop-only): after the handshake the loop owns
// the tls.Conn. Read serves the rest of in, then the slice OnTraffic lends
// (gnet's own buffer, copied only into crypto/tls's record buffer), then
// fails with errWouldBlock, a temporary net.Error that crypto/tls does not
// make sticky. In both modes Read hands over whole records only (see
// Read); the start of a record cut by the end of the lent slice moves into
// in (keepOnLoop) until the rest arrives. Write appends records
// to out, which the loop hands to gnet in one write after each tls.Conn
// call; while gnet still buffers earlier bytes (the socket is behind), Write
// puts each record into gnet's outbound buffer itself, where gnet would only
// have copied out.
type tlsPipe struct {
	// immutable
	c *Conn

	// mu guards the fields below in handshake mode; once nonblock is set only
	// the loop touches them (the handshake goroutine has returned).
	mu       sync.Mutex
	cond     sync.Cond
	in       []byte // ciphertext fed by the loop, not yet read
	inOff    int    // first unread byte of in
	recLeft  int    // bytes of the record being handed to crypto/tls still to hand
	received bool   // any byte arrived from the peer
	closed   error  // set by close: reads fail with it
	nonblock bool   // record mode

	// loop-owned, record mode
	lent []byte // OnTraffic's buffer, valid during the call
	eof  bool   // the peer closed: reads past the data report io.EOF
	out  []byte // records written by the tls.Conn, not yet handed to gnet
}

func newTLSPipe(c *Conn) *tlsPipe {
	p := &tlsPipe{c: c}
	p.cond.L = &p.mu
	return p
}

// errWouldBlock is what a record-mode read returns when no byte is left:
// temporary, so crypto/tls returns it without poisoning the connection.
var errWouldBlock net.Error = wouldBlockError{}

type wouldBlockError struct{}

func (wouldBlockError) Error() string   { return "reactor: tls read would block" }
func (wouldBlockError) Timeout() bool   { return true }
func (wouldBlockError) Temporary() bool { return true }

// feed appends ciphertext received during the handshake (loop side) and
// returns the bytes buffered and not yet read.
func (p *tlsPipe) feed(b []byte) int {
	p.mu.Lock()
	if p.inOff == len(p.in) {
		p.in, p.inOff = p.in[:0], 0
	}
	p.in = append(p.in, b...)
	p.received = true
	n := len(p.in) - p.inOff
	p.mu.Unlock()
	p.cond.Broadcast()
	return n
}

// close makes pending and later reads fail with err (any goroutine); it
// wakes a handshake blocked in Read.
func (p *tlsPipe) close(err error) {
	p.mu.Lock()
	if p.closed == nil {
		p.closed = err
	}
	p.mu.Unlock()
	p.cond.Broadcast()
}

// closeCause returns the error given to close, and whether any byte came
// from the peer.
func (p *tlsPipe) closeCause() (error, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed, p.received
}

// setNonblock switches to record mode (loop-only, after the handshake).
func (p *tlsPipe) setNonblock() {
	p.mu.Lock()
	p.nonblock = true
	p.mu.Unlock()
}

// Read implements net.Conn. It hands crypto/tls one record per call (the
// rest of it when b was short), starting a record only once it is whole,
// so that crypto/tls never holds more than the record it is reading: the
// loop then knows, without asking crypto/tls, when nothing is left to
// decrypt (tlsReadOnLoop), and crypto/tls reads a record with one
// allocation instead of two (each of its reads from the connection
// allocates). Once the connection is closing, partial input is handed over
// too, so that crypto/tls can name a truncated record.
func (p *tlsPipe) Read(b []byte) (int, error) {
	if p.nonblock { // record mode: the loop is the only user
		if n := p.take(b, p.eof); n > 0 {
			return n, nil
		}
		if p.eof {
			return 0, io.EOF
		}
		return 0, errWouldBlock
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if n := p.take(b, p.closed != nil); n > 0 {
			return n, nil
		}
		if p.closed != nil {
			return 0, p.closed
		}
		p.cond.Wait()
	}
}

// TLS record framing as the pipe reads it: a 5-byte header (type, version,
// length) and at most tlsMaxRecord bytes of body (crypto/tls's limit with
// TLS 1.2's expansion).
const (
	tlsRecordHeader = 5
	tlsMaxRecord    = 16384 + 2048
)

// take copies into b the next bytes of the record being handed over, or
// starts the next record if it is whole (any bytes at all when partial is
// set). It returns 0 when there is nothing to hand over. Callers hold mu in
// handshake mode.
func (p *tlsPipe) take(b []byte, partial bool) int {
	avail := len(p.in) - p.inOff + len(p.lent)
	if p.recLeft == 0 {
		p.recLeft = p.wholeRecord(avail)
		if p.recLeft == 0 && partial {
			p.recLeft = avail
		}
	}
	want := min(len(b), p.recLeft, avail)
	n := copy(b[:want], p.in[p.inOff:])
	p.inOff += n
	if p.inOff == len(p.in) {
		p.in, p.inOff = p.in[:0], 0
		if cap(p.in) > 4*tlsMaxRecord {
			p.in = nil
		}
	}
	k := copy(b[n:want], p.lent)
	p.lent = p.lent[k:]
	p.recLeft -= want
	return want
}

// wholeRecord returns the length of the record at the start of the unread
// input (avail bytes) if all of it is there, else 0. Bytes that cannot
// start a record crypto/tls accepts (a content type out of 20-24, a major
// version other than 3, an oversize length: a plain client, garbage) are
// handed over at once, so that crypto/tls rejects them without waiting.
func (p *tlsPipe) wholeRecord(avail int) int {
	if avail < tlsRecordHeader {
		return 0
	}
	typ, major, length := p.at(0), p.at(1), int(p.at(3))<<8|int(p.at(4))
	if typ < 20 || typ > 24 || major != 3 || length > tlsMaxRecord {
		return avail
	}
	if avail < tlsRecordHeader+length {
		return 0
	}
	return tlsRecordHeader + length
}

// at returns the unread input byte i (in, then lent).
func (p *tlsPipe) at(i int) byte {
	k := len(p.in) - p.inOff
	if i < k {
		return p.in[p.inOff+i]
	}
	return p.lent[i-k]
}

// hasInput reports whether Read would hand crypto/tls anything now
// (loop-only, record mode).
func (p *tlsPipe) hasInput() bool {
	return p.recLeft > 0 || p.wholeRecord(len(p.in)-p.inOff+len(p.lent)) > 0
}

// keepOnLoop moves the unread rest of the lent buffer (the start of a
// record, at most tlsRecordHeader+tlsMaxRecord bytes) into in before gnet
// discards it (loop-only, record mode).
func (p *tlsPipe) keepOnLoop() {
	if len(p.lent) > 0 {
		p.in = append(p.in, p.lent...)
	}
	p.lent = nil
}

// Write implements net.Conn. It never fails in record mode (crypto/tls makes
// a write error permanent); in handshake mode it queues a copy of b on the
// connection's ordered Send queue.
func (p *tlsPipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	nonblock := p.nonblock
	p.mu.Unlock()
	if nonblock {
		if len(p.out) == 0 && p.c.gc.OutboundBuffered() > 0 && !p.c.dead {
			// gnet would copy p.out into its outbound buffer anyway (the
			// socket is behind): put the record there directly. gnet
			// makes no system call and cannot fail here.
			_, _ = p.c.gc.Write(b)
			return len(b), nil
		}
		p.out = append(p.out, b...)
		return len(b), nil
	}
	if err := p.c.Send(context.Background(), append([]byte(nil), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close implements net.Conn; crypto/tls calls it only from Conn.Close, which
// the reactor does not use. It fails pending reads.
func (p *tlsPipe) Close() error {
	p.close(net.ErrClosed)
	return nil
}

// LocalAddr implements net.Conn.
func (p *tlsPipe) LocalAddr() net.Addr { return pipeAddr(p.c.local) }

// RemoteAddr implements net.Conn (crypto/tls keys its client session cache
// on it when the config has no ServerName).
func (p *tlsPipe) RemoteAddr() net.Addr { return pipeAddr(p.c.remote) }

// SetDeadline implements net.Conn; deadlines are the reactor's handshake
// timer, so these are no-ops.
func (p *tlsPipe) SetDeadline(time.Time) error { return nil }

// SetReadDeadline implements net.Conn (no-op).
func (p *tlsPipe) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline implements net.Conn (no-op; crypto/tls sets one around
// close_notify).
func (p *tlsPipe) SetWriteDeadline(time.Time) error { return nil }

// pipeAddr is a TCP address captured as a string at open.
type pipeAddr string

func (pipeAddr) Network() string  { return "tcp" }
func (a pipeAddr) String() string { return string(a) }
