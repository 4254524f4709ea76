package reactor

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// TLS on the reactor.
//
// Go's crypto/tls cannot resume a handshake after a would-block (the error
// is sticky), but after the handshake its record layer tolerates a
// temporary read error and keeps partial records. So a TLS connection
// handshakes on a short-lived goroutine of a bounded pool (tls_handshake.go)
// fed by the loop through a blocking pipe (tls_pipe.go), then the loop owns
// the tls.Conn: OnTraffic lends gnet's buffer to the pipe and decrypts every
// whole record, writes encrypt into the pipe and go to gnet in one write. In
// steady state there is no goroutine per connection.
//
// Handler.OnOpen runs only once the handshake succeeded (for a dialed
// connection, before DialTLS returns); Handler.OnData sees plaintext. A
// connection whose handshake fails never reaches the Handler: the failure
// goes to DialTLS's caller or to TLSConfig.OnHandshakeError.

// Defaults applied to zero TLSConfig fields.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultMaxHandshakes    = 256
)

// tlsMaxHandshakeInput bounds the ciphertext buffered for a handshake still
// waiting for its goroutine (a client hello with a long certificate chain
// fits many times over).
const tlsMaxHandshakeInput = 256 << 10

// tlsMaxEarlyInput bounds the ciphertext buffered once the handshake
// goroutine runs. A TLS 1.3 client sends application data right after its
// Finished, before the server's goroutine has read it and the loop has
// taken the connection over; gnet cannot stop reading, so those bytes wait
// in the pipe. A running handshake reads its records as they come, so only
// such early data accumulates, for a few loop turns.
const tlsMaxEarlyInput = 16 << 20

// tlsPlainChunk is the least room decrypted bytes get per OnData (one full
// record's plaintext fits many times); the loop's buffer grows to
// ReadBufferCap, so one read's worth of records reaches OnData at once.
const tlsPlainChunk = 64 << 10

// TLSConfig turns on TLS for a reactor.
type TLSConfig struct {
	// Server, when set, makes every accepted connection a TLS server with
	// this configuration (it must hold a certificate). Nil accepts plain TCP.
	// The reactor uses a clone.
	Server *tls.Config
	// HandshakeTimeout bounds a handshake, counted from the TCP open
	// (including time spent waiting for a free handshake goroutine). Zero
	// means DefaultHandshakeTimeout (10 s).
	HandshakeTimeout time.Duration
	// MaxHandshakes bounds the handshakes running at once, each on its own
	// short-lived goroutine; further connections wait in FIFO order (their
	// timeout runs meanwhile). Zero means DefaultMaxHandshakes (256).
	MaxHandshakes int
	// OnHandshakeError, if set, receives the failed handshakes of accepted
	// connections (dialed ones fail DialTLS). It runs on a handshake
	// goroutine or an event loop and must not block. remote is the peer's
	// address; err matches ErrTLSHandshake and a more specific error below.
	OnHandshakeError func(remote string, err error)
}

func (t TLSConfig) withDefaults() (TLSConfig, error) {
	if t.HandshakeTimeout < 0 || t.MaxHandshakes < 0 {
		return t, errors.New("reactor: invalid config: negative TLS value")
	}
	if t.HandshakeTimeout == 0 {
		t.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if t.MaxHandshakes == 0 {
		t.MaxHandshakes = DefaultMaxHandshakes
	}
	if t.Server != nil {
		t.Server = tlsRecordConfig(t.Server)
	}
	return t, nil
}

// tlsRecordConfig clones cfg for use on a loop: full-size records from the
// first byte (small records only help a browser's first paint).
func tlsRecordConfig(cfg *tls.Config) *tls.Config {
	cfg = cfg.Clone()
	cfg.DynamicRecordSizingDisabled = true
	return cfg
}

// TLS errors; every handshake failure matches ErrTLSHandshake and, where
// the cause is known, one of the more specific errors. Test with errors.Is.
var (
	// ErrTLSHandshake reports a failed TLS handshake; the cause is wrapped.
	ErrTLSHandshake = errors.New("reactor: TLS handshake failed")
	// ErrTLSHandshakeTimeout reports a handshake that did not finish within
	// TLSConfig.HandshakeTimeout (a silent or stalled peer). It matches
	// ErrTLSHandshake and has a Timeout() bool method that reports true.
	ErrTLSHandshakeTimeout error = tlsTimeoutError{}
	// ErrTLSNotTLS reports a peer that does not speak TLS: a server got
	// something other than a ClientHello (a plain client on a TLS port), or
	// a client's peer closed before sending any byte back (a TLS client on
	// a plain port).
	ErrTLSNotTLS = fmt.Errorf("%w: peer does not speak TLS", ErrTLSHandshake)
	// ErrTLSCertificate reports a peer certificate that failed verification.
	ErrTLSCertificate = fmt.Errorf("%w: bad certificate", ErrTLSHandshake)
	// ErrTLSCertExpired reports a peer certificate outside its validity.
	ErrTLSCertExpired = fmt.Errorf("%w: expired or not yet valid", ErrTLSCertificate)
	// ErrTLSCertName reports a peer certificate not valid for the name
	// dialed.
	ErrTLSCertName = fmt.Errorf("%w: wrong name", ErrTLSCertificate)
	// ErrTLSCertUntrusted reports a peer certificate signed by an unknown
	// authority.
	ErrTLSCertUntrusted = fmt.Errorf("%w: unknown authority", ErrTLSCertificate)
	// ErrTLSAlert reports a fatal alert received from the peer after the
	// handshake (for example a TLS 1.3 server rejecting the client's
	// certificate).
	ErrTLSAlert = errors.New("reactor: TLS alert from peer")
	// ErrTLSRecord reports a bad record after the handshake: plaintext, a
	// failed authentication, an oversize record.
	ErrTLSRecord = errors.New("reactor: bad TLS record")
	// ErrTLSTruncated reports a connection that ended inside a TLS record.
	ErrTLSTruncated = errors.New("reactor: connection ended inside a TLS record")
)

// tlsTimeoutError is ErrTLSHandshakeTimeout.
type tlsTimeoutError struct{}

func (tlsTimeoutError) Error() string { return "reactor: TLS handshake failed: timeout" }
func (tlsTimeoutError) Timeout() bool { return true }
func (tlsTimeoutError) Unwrap() error { return ErrTLSHandshake }

// Handshake states (tlsState.hs).
const (
	hsQueued  int32 = iota // waiting for a handshake goroutine
	hsRunning              // a goroutine runs the handshake
	hsDone                 // finished, failed or abandoned
)

// tlsState is the TLS side of a Conn.
type tlsState struct {
	// immutable
	tc     *tls.Conn
	p      *tlsPipe
	result chan error // dialed: receives the handshake outcome once

	hs       atomic.Int32 // hsQueued, hsRunning, hsDone
	reported atomic.Bool  // the outcome went to result or OnHandshakeError

	// loop-owned
	open      bool   // handshake done, Handler.OnOpen ran
	closeSent bool   // close_notify queued
	gotEOF    bool   // close_notify (or a clean EOF) read
	timer     *Timer // handshake timeout, nil once stopped
	rest      []byte // plaintext the handler left unconsumed
	// held: crypto/tls may still hold plaintext (the last Read filled the
	// room it was given, or the handshake just ended), so the loop must
	// read again even when the pipe has no whole record.
	held bool
}

// newTLSState prepares a connection's TLS side; client selects the role.
func newTLSState(c *Conn, cfg *tls.Config, client bool) *tlsState {
	t := &tlsState{p: newTLSPipe(c)}
	if client {
		t.tc = tls.Client(t.p, cfg)
		t.result = make(chan error, 1)
	} else {
		t.tc = tls.Server(t.p, cfg)
	}
	return t
}

// TLSConnectionState returns the TLS state of the connection and true, or
// false for a plain connection (any goroutine, after OnOpen).
func (c *Conn) TLSConnectionState() (tls.ConnectionState, bool) {
	if c.tls == nil {
		return tls.ConnectionState{}, false
	}
	return c.tls.tc.ConnectionState(), true
}

// startTLSOnLoop starts the handshake of a TLS connection from gnet's OnOpen
// and reports whether it did (Handler.OnOpen then waits for the handshake).
func (c *Conn) startTLSOnLoop() bool {
	if c.tls == nil {
		if c.dialed || c.r.cfg.TLS.Server == nil {
			return false
		}
		c.tls = newTLSState(c, c.r.cfg.TLS.Server, false)
	}
	c.tls.timer = c.loop.AfterFunc(c.r.cfg.TLS.HandshakeTimeout, func() {
		c.tls.timer = nil
		if !c.tls.open {
			c.Abort(ErrTLSHandshakeTimeout)
		}
	})
	c.r.hs.enqueue(c)
	return true
}

// tlsOpenOnLoop runs on the loop after a successful handshake, in Send
// queue order after the handshake's last flight: the loop takes over the
// tls.Conn, the Handler sees OnOpen, then any application data that arrived
// with the end of the handshake.
func (c *Conn) tlsOpenOnLoop() {
	t := c.tls
	if c.dead || c.closeState.Load() == closeAbort {
		return
	}
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	t.p.setNonblock()
	t.open = true
	t.held = true
	c.r.h.OnOpen(c)
	t.report(c, nil) // DialTLS returns after OnOpen, as Dial does
	c.afterUserOnLoop()
	if c.dead {
		return
	}
	if c.r.stopping.Load() {
		c.Close(ErrStopped)
	}
	if err := c.tlsReadOnLoop(); err != nil {
		c.Abort(err)
	}
}

// report delivers the handshake outcome once: to DialTLS (dialed) or, for
// a failure of an accepted connection, to OnHandshakeError.
func (t *tlsState) report(c *Conn, err error) {
	if !t.reported.CompareAndSwap(false, true) {
		return
	}
	if t.result != nil {
		t.result <- err
		return
	}
	if err != nil && c.r.cfg.TLS.OnHandshakeError != nil {
		c.r.cfg.TLS.OnHandshakeError(c.remote, err)
	}
}

// tlsTrafficOnLoop is trafficOnLoop for a TLS connection: ciphertext goes to
// the handshake, or is decrypted and the plaintext presented to OnData.
func (c *Conn) tlsTrafficOnLoop() gnet.Action {
	seen := c.r.tasks.Load()
	gc, t := c.gc, c.tls
	buf, _ := gc.Peek(-1)
	if len(buf) == 0 {
		return gnet.None
	}
	if !t.open {
		n := t.p.feed(buf)
		_, _ = gc.Discard(len(buf))
		limit := tlsMaxEarlyInput
		if t.hs.Load() == hsQueued {
			limit = tlsMaxHandshakeInput
		}
		if n > limit {
			c.Abort(fmt.Errorf("%w: more than %d bytes buffered", ErrTLSHandshake, limit))
			return gnet.Close
		}
		return gnet.None
	}
	t.p.lent = buf
	err := c.tlsReadOnLoop()
	t.p.keepOnLoop()
	if c.dead {
		return gnet.None
	}
	if c.readPaused {
		c.applyReadPause() // as trafficOnLoop (readpause.go)
	}
	_, _ = gc.Discard(len(buf))
	if err != nil {
		c.Abort(err)
	}
	if c.closeState.Load() == closeAbort {
		return gnet.Close
	}
	c.spinOnLoop(seen)
	return gnet.None
}

// tlsReadOnLoop decrypts every whole record the pipe holds and presents the
// plaintext to OnData, then hands gnet what the reads wrote (KeyUpdate
// answers). It returns the error that must abort the connection; the peer's
// close_notify starts a graceful close instead.
func (c *Conn) tlsReadOnLoop() error {
	t := c.tls
	for !c.dead && c.closeState.Load() != closeAbort {
		scratch := len(t.rest) == 0
		buf := t.rest
		if scratch {
			buf = c.loop.tlsPlain[:0]
		}
		if want := max(tlsPlainChunk, c.r.cfg.ReadBufferCap); scratch && cap(buf) < want {
			// The loop keeps its scratch buffer even if this read finds
			// nothing (a connection opening, a partial record).
			buf = make([]byte, 0, want)
			c.loop.tlsPlain = buf
		} else if cap(buf)-len(buf) < tlsPlainChunk {
			buf = append(buf, make([]byte, tlsPlainChunk)...)[:len(buf)]
		}
		had := len(buf)
		var err error
		for len(buf) < cap(buf) {
			if !t.held && !t.p.hasInput() {
				err = errWouldBlock // nothing to decrypt: no probe through crypto/tls
				break
			}
			var n int
			room := cap(buf) - len(buf)
			n, err = t.tc.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			t.held = err == nil && n == room
			if err != nil || n == 0 {
				break
			}
		}
		if len(buf) > had {
			k := c.r.h.OnData(c, buf)
			c.yieldAfter(len(buf) - had)
			c.afterUserOnLoop()
			rest := buf[min(max(k, 0), len(buf)):]
			if len(rest) > c.r.cfg.MaxInbound {
				return ErrInboundOverflow
			}
			if scratch {
				c.loop.tlsPlain = buf[:0]
				t.rest = append(t.rest[:0], rest...)
			} else {
				t.rest = append(buf[:0], rest...)
			}
			if len(t.rest) == 0 && cap(t.rest) > tlsPlainChunk {
				t.rest = nil
			}
		} else if !scratch {
			t.rest = buf
		}
		if c.dead {
			return nil
		}
		if ferr := c.tlsFlushOnLoop(); ferr != nil {
			return nil // closed inside gnet's Write
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, errWouldBlock):
			return nil
		case errors.Is(err, io.EOF):
			t.gotEOF = true
			c.Close(fmt.Errorf("reactor: TLS close_notify: %w", io.EOF))
			return nil
		default:
			return tlsRecordError(err)
		}
	}
	return nil
}

// tlsRecordError names a read error after the handshake. crypto/tls
// reports a received alert as a *net.OpError with Op "remote error".
func tlsRecordError(err error) error {
	var ae tls.AlertError
	var oe *net.OpError
	if errors.As(err, &ae) || (errors.As(err, &oe) && oe.Op == "remote error") {
		return fmt.Errorf("%w: %w", ErrTLSAlert, err)
	}
	return fmt.Errorf("%w: %w", ErrTLSRecord, err)
}

// tlsFlushOnLoop hands gnet the records the tls.Conn wrote.
func (c *Conn) tlsFlushOnLoop() error {
	p := c.tls.p
	if len(p.out) == 0 {
		return nil
	}
	if c.dead {
		p.out = p.out[:0]
		return ErrClosed
	}
	_, err := c.gc.Write(p.out)
	n := len(p.out)
	if cap(p.out) > 4*tlsPlainChunk {
		p.out = nil
	} else {
		p.out = p.out[:0]
	}
	if c.dead {
		return ErrClosed
	}
	if c.readPaused {
		c.applyReadPause() // gnet may have re-registered EPOLLIN
	}
	c.yieldAfter(n)
	return err
}

// tlsWriteOnLoop encrypts bufs once the handshake is done; before it (the
// handshake flights queued by the pipe) bytes go out as they are. It
// reports whether it handled the write, and the write's error.
//
// One call yields full-size records except its last one, however bufs are
// cut: each tls.Conn.Write ends in a record of its own, so pieces that
// would end a record early (a packet header before a borrowed value, the
// tail of a piece) are first gathered into the loop's staging buffer up to
// a full record's plaintext. Whole records of a piece are encrypted from
// the piece itself.
func (c *Conn) tlsWriteOnLoop(bufs [][]byte) (bool, error) {
	t := c.tls
	if t == nil || !t.open {
		return false, nil
	}
	if c.dead {
		return true, ErrClosed
	}
	if len(bufs) == 1 {
		if err := c.tlsEncryptOnLoop(bufs[0]); err != nil {
			return true, err
		}
		return true, c.tlsFlushOnLoop()
	}
	l := c.loop
	var stage []byte
	if l.tlsStageBusy {
		// A write from a callback inside this one (another connection's
		// OnClose, run by gnet's Write) gets a buffer of its own.
		stage = make([]byte, 0, tlsRecordPlain)
	} else {
		if l.tlsStage == nil {
			l.tlsStage = make([]byte, 0, tlsRecordPlain)
		}
		stage = l.tlsStage[:0]
		l.tlsStageBusy = true
		defer func() { l.tlsStageBusy = false }()
	}
	for i, b := range bufs {
		last := i == len(bufs)-1
		for len(b) > 0 {
			if len(stage) == 0 && (last || len(b) >= tlsRecordPlain) {
				k := len(b)
				if !last {
					k -= k % tlsRecordPlain // the tail joins the next piece
				}
				if err := c.tlsEncryptOnLoop(b[:k]); err != nil {
					return true, err
				}
				b = b[k:]
				continue
			}
			k := min(len(b), tlsRecordPlain-len(stage))
			stage = append(stage, b[:k]...)
			b = b[k:]
			if len(stage) == tlsRecordPlain {
				if err := c.tlsEncryptOnLoop(stage); err != nil {
					return true, err
				}
				stage = stage[:0]
			}
		}
	}
	if len(stage) > 0 {
		if err := c.tlsEncryptOnLoop(stage); err != nil {
			return true, err
		}
	}
	return true, c.tlsFlushOnLoop()
}

// tlsRecordPlain is the plaintext of a full-size TLS record (crypto/tls's
// maximum with DynamicRecordSizingDisabled).
const tlsRecordPlain = 16 << 10

// tlsEncryptOnLoop encrypts b into records in the pipe, handing gnet what
// has collected every tlsPlainChunk bytes. It returns ErrClosed once the
// connection closed.
func (c *Conn) tlsEncryptOnLoop(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if c.dead {
		return ErrClosed
	}
	if _, err := c.tls.tc.Write(b); err != nil {
		c.Abort(fmt.Errorf("%w: %w", ErrTLSRecord, err))
		return ErrClosed
	}
	if len(c.tls.p.out) >= tlsPlainChunk {
		return c.tlsFlushOnLoop()
	}
	return nil
}

// tlsCloseNotifyOnLoop sends close_notify once, when a graceful close has
// drained the Send queue.
func (c *Conn) tlsCloseNotifyOnLoop() {
	t := c.tls
	if t == nil || !t.open || t.closeSent || c.dead {
		return
	}
	t.closeSent = true
	_ = t.tc.CloseWrite()
	_ = c.tlsFlushOnLoop()
}

// tlsClosedOnLoop runs first in closedOnLoop: it names a close inside a
// record, stops the handshake timer and ends a handshake in progress
// (which then reports its failure). It returns the close error to report.
func (c *Conn) tlsClosedOnLoop(err error) error {
	t := c.tls
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	if t.open && !t.gotEOF && errors.Is(err, io.EOF) {
		t.p.eof = true
		var one [1]byte
		if _, rerr := t.tc.Read(one[:]); errors.Is(rerr, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: %w", ErrTLSTruncated, err)
		}
	}
	cause := err
	if cause == nil {
		cause = ErrClosed
	}
	c.mu.Lock()
	if c.closeErr != nil {
		cause = c.closeErr
	}
	c.mu.Unlock()
	t.p.close(cause)
	// A handshake that succeeded but whose open never ran, or one still
	// queued with no byte received, reports here. One running reports when
	// the closed pipe ends it; one queued with bytes received still runs on
	// them, so that its error names what the peer sent.
	_, received := t.p.closeCause()
	if !t.open && ((!received && t.hs.CompareAndSwap(hsQueued, hsDone)) || t.hs.Load() == hsDone) {
		t.report(c, classifyHandshake(nil, cause, received, c.dialed))
	}
	return err
}

// handlerOwnsOnLoop reports whether the Handler saw OnOpen (so it gets
// OnClose): always for plain connections, after the handshake for TLS.
func (c *Conn) handlerOwnsOnLoop() bool { return c.tls == nil || c.tls.open }
