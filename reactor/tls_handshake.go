package reactor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
)

// handshaker runs TLS handshakes on at most max goroutines at once. The
// loops enqueue connections (OnOpen); a goroutine starts when fewer than
// max run, and each one takes the next queued connection when it finishes,
// exiting when the queue is empty. So no goroutine lives longer than the
// handshakes it serves, and a flood of connections queues instead of
// spawning goroutines. A queued connection whose handshake timer fires or
// that closes is dropped from the queue without a goroutine.
type handshaker struct {
	// immutable
	max int

	// mu guards the fields below. Never held while calling crypto/tls or
	// a connection.
	mu      sync.Mutex
	queue   []*Conn
	running int
	wg      sync.WaitGroup // running goroutines; Stop waits for them
}

// enqueue schedules c's handshake (any goroutine).
func (h *handshaker) enqueue(c *Conn) {
	h.mu.Lock()
	if h.running >= h.max {
		h.queue = append(h.queue, c)
		h.mu.Unlock()
		return
	}
	h.running++
	h.wg.Add(1)
	h.mu.Unlock()
	go h.run(c)
}

// run handshakes c, then every queued connection, and exits.
func (h *handshaker) run(c *Conn) {
	defer h.wg.Done()
	for c != nil {
		c.handshake()
		h.mu.Lock()
		c = nil
		if len(h.queue) > 0 {
			c = h.queue[0]
			h.queue[0] = nil
			h.queue = h.queue[1:]
		} else {
			h.running--
		}
		h.mu.Unlock()
	}
}

// wait returns once no handshake goroutine runs (Stop, after every
// connection closed).
func (h *handshaker) wait() { h.wg.Wait() }

// handshake runs c's handshake on the calling goroutine. Success hands the
// tls.Conn to the loop (tlsOpenOnLoop, queued after the last flight);
// failure closes the connection gracefully, so that the alert crypto/tls
// queued reaches the peer, and reports the named error.
func (c *Conn) handshake() {
	t := c.tls
	if !t.hs.CompareAndSwap(hsQueued, hsRunning) {
		return // closed or timed out while queued
	}
	err := t.tc.HandshakeContext(context.Background())
	if err == nil {
		t.hs.Store(hsDone)
		err = c.Execute(c.tlsOpenOnLoop)
		if err == nil {
			return
		}
	}
	cause, received := t.p.closeCause()
	err = classifyHandshake(err, cause, received, c.dialed)
	// Report before the state says done and before the alert goes out: a
	// close seen by the loop once the handshake is done reports its own
	// cause, and a peer that reads our alert closes at once (its EOF would
	// win the report over the error that made us send the alert).
	t.report(c, err)
	t.hs.Store(hsDone)
	var rh tls.RecordHeaderError
	if !c.dialed && errors.As(err, &rh) {
		// A plain client on a TLS port: answer with a TLS alert, so that
		// the peer can name the mismatch too.
		_ = c.Send(context.Background(), tlsAlertUnexpected)
	}
	c.Close(err)
}

// tlsAlertUnexpected is a fatal unexpected_message alert record.
var tlsAlertUnexpected = []byte{21, 3, 3, 0, 2, 2, 10}

// classifyHandshake names a handshake failure. hsErr is crypto/tls's error
// (nil if the connection closed before the handshake ran), cause the reason
// the connection closed if it did, received whether the peer sent any byte.
func classifyHandshake(hsErr, cause error, received, dialed bool) error {
	var (
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		unknown  x509.UnknownAuthorityError
		rh       tls.RecordHeaderError
	)
	switch {
	case cause != nil && errors.Is(cause, ErrTLSHandshake):
		return cause // named already (timeout, too much input)
	case cause != nil && errors.Is(cause, ErrStopped):
		return fmt.Errorf("%w: %w", ErrTLSHandshake, cause)
	case hsErr == nil && cause != nil:
		hsErr = cause
	}
	switch {
	case errors.As(hsErr, &invalid) && invalid.Reason == x509.Expired:
		return fmt.Errorf("%w: %w", ErrTLSCertExpired, hsErr)
	case errors.As(hsErr, &hostname):
		return fmt.Errorf("%w: %w", ErrTLSCertName, hsErr)
	case errors.As(hsErr, &unknown):
		return fmt.Errorf("%w: %w", ErrTLSCertUntrusted, hsErr)
	case errors.As(hsErr, &invalid):
		return fmt.Errorf("%w: %w", ErrTLSCertificate, hsErr)
	case errors.As(hsErr, &rh):
		return fmt.Errorf("%w: %w", ErrTLSNotTLS, hsErr)
	case dialed && !received && peerClosed(hsErr, cause):
		return fmt.Errorf("%w: peer closed before answering: %w", ErrTLSNotTLS, hsErr)
	}
	return fmt.Errorf("%w: %w", ErrTLSHandshake, hsErr)
}

// peerClosed reports an end of stream or reset from the peer.
func peerClosed(errs ...error) bool {
	for _, err := range errs {
		if err != nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
			errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
			return true
		}
	}
	return false
}

// DialTLS is Dial for a TLS client: it connects, registers the socket, runs
// the handshake with cfg (verification as cfg says; set ServerName, or
// InsecureSkipVerify for tests only) and returns after the handshake
// succeeded and OnOpen ran. A failed handshake closes the connection
// (OnOpen and OnClose never run) and returns an error matching ErrDial and
// ErrTLSHandshake (and the specific TLS error). The handshake is bounded by
// TLSConfig.HandshakeTimeout and by ctx. cfg must not change afterwards.
func (r *Reactor) DialTLS(ctx context.Context, addr string, cfg *tls.Config, data any) (*Conn, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%w: %s: nil tls.Config", ErrDial, addr)
	}
	return r.dialTLS(ctx, addr, cfg, data, nil)
}

// dialTLS is DialTLS with the connection opened by connect (DialWith).
func (r *Reactor) dialTLS(ctx context.Context, addr string, cfg *tls.Config, data any, connect Connect) (*Conn, error) {
	c, err := r.dial(ctx, addr, data, cfg, connect)
	if err != nil {
		return nil, err
	}
	select {
	case err = <-c.tls.result:
	case <-ctx.Done():
		c.Abort(fmt.Errorf("%w: %w", ErrTLSHandshake, context.Cause(ctx)))
		err = <-c.tls.result
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrDial, addr, err)
	}
	return c, nil
}
