package reactor

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/panjf2000/gnet/v2"
)

// Dial connects to addr ("host:port") off the loops, with the context's
// deadline or DialTimeout (whichever is earlier), registers the socket on the
// least-loaded loop and returns after OnOpen has run. data is available
// through Conn.Data in OnOpen.
//
// Failures wrap ErrDial and the cause (errors.Is works for both, e.g. a
// context.DeadlineExceeded). Dial returns ErrStopped before Start or once
// Stop has begun; a dial in progress when Stop begins fails with ErrDial.
//
// Dial blocks until the loop has run OnOpen, so it must not be called from an
// event loop (it could deadlock); call it from another goroutine.
func (r *Reactor) Dial(ctx context.Context, addr string, data any) (*Conn, error) {
	return r.dial(ctx, addr, data, nil, nil)
}

// Connect opens the connection that DialWith registers, for example a
// TCP connection to a proxy followed by the proxy's handshake. It runs on
// the dialing goroutine under DialWith's context (its deadline included)
// and returns a connection ready to carry the caller's own bytes, with
// nothing read past its handshake. The connection must be a socket that
// gnet can take over (a *net.TCPConn): gnet duplicates its file
// descriptor and closes it.
type Connect func(ctx context.Context, addr string) (net.Conn, error)

// DialWith is Dial with the connection opened by connect instead of a
// plain TCP connect to addr (nil connect means the plain connect); with
// tcfg set, the connection then handshakes TLS as in DialTLS, inside
// whatever connect set up. Failures of connect wrap ErrDial and connect's
// error.
func (r *Reactor) DialWith(ctx context.Context, addr string, connect Connect, tcfg *tls.Config, data any) (*Conn, error) {
	if tcfg == nil {
		return r.dial(ctx, addr, data, nil, connect)
	}
	return r.dialTLS(ctx, addr, tcfg, data, connect)
}

// dial is Dial, and the TCP part of DialTLS when tcfg is set: the Conn
// then handshakes before Handler.OnOpen (tls.go). connect, if set, opens
// the connection instead of a plain TCP connect.
func (r *Reactor) dial(ctx context.Context, addr string, data any, tcfg *tls.Config, connect Connect) (*Conn, error) {
	r.mu.Lock()
	if r.state != stateRunning {
		r.mu.Unlock()
		return nil, ErrStopped
	}
	r.dials.Add(1)
	eng := r.eng
	r.mu.Unlock()
	defer r.dials.Done()

	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(r.stopCtx, func() { cancel(ErrStopped) })
	defer stop()

	if connect == nil {
		d := net.Dialer{Timeout: r.cfg.DialTimeout}
		connect = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	} else if _, ok := dctx.Deadline(); !ok {
		var cancelT context.CancelFunc
		dctx, cancelT = context.WithTimeout(dctx, r.cfg.DialTimeout)
		defer cancelT()
	}
	nc, err := connect(dctx, addr)
	if err != nil {
		if cause := context.Cause(dctx); cause == ErrStopped {
			err = fmt.Errorf("%w: %w", err, ErrStopped)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrDial, addr, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}

	c := newConn(r, true, data)
	if tcfg != nil {
		c.tls = newTLSState(c, tlsRecordConfig(tcfg), true)
	}
	rctx := gnet.NewContext(gnet.NewNetConnContext(context.Background(), nc), c)
	r.gate.RLock()
	if r.gateClosed {
		r.gate.RUnlock()
		_ = nc.Close()
		return nil, ErrStopped
	}
	ch, err := eng.Register(rctx)
	r.gate.RUnlock()
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("%w: %s: register: %w", ErrDial, addr, err)
	}
	// gnet closes nc once it has dup'ed the fd. The result arrives after
	// OnOpen ran; registration is local and quick, so no ctx here: giving up
	// early would leave a registered connection nobody knows about.
	res, ok := <-ch
	if !ok || res.Err != nil {
		err := res.Err
		if err == nil {
			err = ErrStopped
		}
		return nil, fmt.Errorf("%w: %s: register: %w", ErrDial, addr, err)
	}
	return c, nil
}
