package ipc

// SOCKS5: a pool reaching its destination through a proxy.
//
// The handshake (internal/socks5, a pure state machine) runs in the dial
// step, on the goroutine that already exists for each connection attempt
// (pool.dial): it connects to the proxy, greets it, authenticates, asks
// for a CONNECT to the destination and reads exactly the replies, then
// hands the socket to the reactor (reactor.DialWith) as if it had been
// dialed directly. So no goroutine and no loop time are spent on it in
// steady state, DialTimeout bounds the whole attempt (connect and
// handshake), TLS runs afterwards end to end with the destination, and a
// failed handshake is a failed connection attempt like a refused connect:
// the pool's backoff and resend rules apply unchanged.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/ipcframe/ipcframe/internal/socks5"
)

// SOCKS5 configures a SOCKS5 proxy (RFC 1928, CONNECT command) for
// Config.Proxy or PoolOptions.Proxy.
type SOCKS5 struct {
	// Addr is the proxy's "host:port". Required. A name is resolved by
	// the system resolver at each connection attempt.
	Addr string
	// Username and Password, when Username is set, authenticate with RFC
	// 1929 username/password (each at most 255 bytes); the proxy may still
	// choose no authentication. An empty Username offers no
	// authentication only.
	Username, Password string
	// ResolveLocally resolves the destination name with Config.Resolver
	// and asks the proxy to connect to an address (one per attempt,
	// rotating through the addresses as a direct pool does). False (the
	// default) sends the name for the proxy to resolve, which is what a
	// proxy into another network needs.
	ResolveLocally bool
}

// Proxy errors. A failed proxy handshake fails the connection attempt
// (PoolConnectFailed, then the pool's backoff) with an error that matches
// ErrProxy and, when the cause is known, one of the others.
var (
	// ErrProxy matches every failure to reach the destination through the
	// proxy: the proxy unreachable, closing during the handshake, or one of
	// the more specific errors below.
	ErrProxy = errors.New("ipc: SOCKS5 proxy")
	// ErrProxyAuth: the proxy rejected the username and password, or
	// accepts none of the methods offered (it wants a password and none is
	// configured).
	ErrProxyAuth = fmt.Errorf("%w: authentication failed", ErrProxy)
	// ErrProxyRefused: the proxy answered the CONNECT with a failure (its
	// rules refuse the destination, the destination refused or is
	// unreachable); the message names the SOCKS5 reply.
	ErrProxyRefused = fmt.Errorf("%w: connection refused by the proxy", ErrProxy)
	// ErrProxyProtocol: the proxy answered bytes that are not SOCKS5.
	ErrProxyProtocol = fmt.Errorf("%w: answer is not SOCKS5", ErrProxy)
)

// validate checks a proxy configuration (nil is valid: no proxy).
func (x *SOCKS5) validate() error {
	if x == nil {
		return nil
	}
	if _, _, err := net.SplitHostPort(x.Addr); err != nil {
		return fmt.Errorf("Addr %q is not host:port", x.Addr)
	}
	if len(x.Username) > 255 || len(x.Password) > 255 {
		return errors.New("Username and Password are limited to 255 bytes")
	}
	if x.Username == "" && x.Password != "" {
		return errors.New("Password without Username")
	}
	return nil
}

// connect implements reactor.Connect: a TCP connection to the proxy, then
// the handshake for a CONNECT to dest ("host:port", the host a name or an
// address). ctx bounds both.
func (x *SOCKS5) connect(ctx context.Context, dest string) (net.Conn, error) {
	host, ps, err := net.SplitHostPort(dest)
	if err != nil {
		return nil, fmt.Errorf("%w: %q", ErrBadName, dest)
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("%w: port of %q", ErrBadName, dest)
	}
	hs, err := socks5.NewClient(host, uint16(port), x.Username, x.Password)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadName, err)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", x.Addr)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrProxy, x.Addr, err)
	}
	if err := handshake(ctx, nc, hs); err != nil {
		nc.Close()
		return nil, proxyError(x.Addr, dest, err)
	}
	return nc, nil
}

// handshake runs hs on nc within ctx: ctx's deadline is the connection's,
// and ctx's end interrupts the handshake. A failure past the deadline
// wraps context.DeadlineExceeded, as a direct dial's does.
func handshake(ctx context.Context, nc net.Conn, hs *socks5.Client) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = nc.SetDeadline(time.Unix(1, 0))
		close(interrupted)
	})
	err := hs.Run(nc)
	if !stop() {
		<-interrupted
	}
	if err != nil {
		// Name the cause as a direct dial does: the socket's deadline may
		// fire just before the context's own timer.
		if cause := context.Cause(ctx); cause != nil {
			err = fmt.Errorf("%w: %w", err, cause)
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("%w: %w", err, context.DeadlineExceeded)
		}
		return err
	}
	return nc.SetDeadline(time.Time{})
}

// proxyError names a handshake failure with the proxy sentinels.
func proxyError(proxy, dest string, err error) error {
	kind := ErrProxy
	switch {
	case errors.Is(err, socks5.ErrAuth), errors.Is(err, socks5.ErrNoMethod):
		kind = ErrProxyAuth
	case errors.Is(err, socks5.ErrRefused):
		kind = ErrProxyRefused
	case errors.Is(err, socks5.ErrProtocol):
		kind = ErrProxyProtocol
	}
	return fmt.Errorf("%w: %s to %s: %w", kind, proxy, dest, err)
}
