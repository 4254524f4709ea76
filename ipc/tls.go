package ipc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/ipcframe/ipcframe/reactor"
)

// TLS errors (the reactor's, re-exported): a failed handshake closes only
// its connection. Test them with errors.Is.
var (
	// ErrTLSHandshake matches every failed handshake.
	ErrTLSHandshake = reactor.ErrTLSHandshake
	// ErrTLSHandshakeTimeout: the handshake did not finish within
	// Config.TLSHandshakeTimeout.
	ErrTLSHandshakeTimeout = reactor.ErrTLSHandshakeTimeout
	// ErrTLSNotTLS: the peer does not speak TLS (a plain client on a TLS
	// port, seen by the server; a TLS client on a plain port, seen by the
	// client).
	ErrTLSNotTLS = reactor.ErrTLSNotTLS
	// ErrTLSCertificate matches the three certificate errors below and any
	// other verification failure.
	ErrTLSCertificate = reactor.ErrTLSCertificate
	// ErrTLSCertExpired: the peer's certificate is expired or not yet
	// valid.
	ErrTLSCertExpired = reactor.ErrTLSCertExpired
	// ErrTLSCertName: the server's certificate does not hold the name
	// dialed.
	ErrTLSCertName = reactor.ErrTLSCertName
	// ErrTLSCertUntrusted: the peer's certificate is signed by an unknown
	// authority.
	ErrTLSCertUntrusted = reactor.ErrTLSCertUntrusted
	// ErrTLSAlert: the peer sent a fatal alert after the handshake (a TLS
	// 1.3 server rejecting the client's certificate, say).
	ErrTLSAlert = reactor.ErrTLSAlert
	// ErrTLSRecord: a bad record after the handshake (plaintext, failed
	// authentication).
	ErrTLSRecord = reactor.ErrTLSRecord
	// ErrTLSTruncated: the connection ended inside a TLS record.
	ErrTLSTruncated = reactor.ErrTLSTruncated
)

// ErrPeerSpeaksTLS reports a plain connection that received a TLS record:
// a TLS client on a plain port (seen by the server), or a plain client on a
// TLS port (seen by the client, which gets the server's alert). It comes
// with ErrBadPacketHeader.
var ErrPeerSpeaksTLS = errors.New("ipc: peer speaks TLS on a plain connection")

// reactorTLS is the reactor's part of the TLS configuration.
func (c *Config) reactorTLS() reactor.TLSConfig {
	return reactor.TLSConfig{
		Server:           c.TLSServer,
		HandshakeTimeout: c.TLSHandshakeTimeout,
		MaxHandshakes:    c.MaxTLSHandshakes,
		OnHandshakeError: c.handshakeFailed(),
	}
}

// handshakeFailed returns the reactor's OnHandshakeError: it logs the
// failure (log.go) and passes it to TLSHandshakeFailed.
func (c *Config) handshakeFailed() func(string, error) {
	user, lg := c.TLSHandshakeFailed, c.Logger
	return func(remote string, err error) {
		if ctx := context.Background(); lg.Enabled(ctx, slog.LevelInfo) {
			lg.LogAttrs(ctx, slog.LevelInfo, "ipc: TLS handshake failed",
				slog.String(logPeer, remote), slog.String(logSide, "accepted"), slog.Any(logErr, err))
		}
		if user != nil {
			user(remote, err)
		}
	}
}

// dial connects conn c to addr for the destination name: through proxy
// when it is set (socks5.go; addr is then the name itself unless the proxy
// resolves locally), TLS when Config.TLSClient is set, verifying the
// name's host unless the config names a server itself.
func (s *Service) dial(ctx context.Context, name, addr string, proxy *SOCKS5, c *conn) error {
	var connect reactor.Connect
	if proxy != nil {
		connect = proxy.connect
	}
	cfg := s.cfg.TLSClient
	if cfg == nil {
		_, err := s.r.DialWith(ctx, addr, connect, nil, c)
		return err
	}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(name)
		if err != nil {
			return fmt.Errorf("%w: %q", ErrBadName, name)
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	_, err := s.r.DialWith(ctx, addr, connect, cfg, c)
	return err
}

// tlsMismatch adds ErrPeerSpeaksTLS to a bad packet header that is the
// start of a TLS record (handshake or alert, version 3.x).
func tlsMismatch(data []byte, err error) error {
	if len(data) >= 3 && (data[0] == 22 || data[0] == 21) && data[1] == 3 && errors.Is(err, ErrBadPacketHeader) {
		return fmt.Errorf("%w: %w", ErrPeerSpeaksTLS, err)
	}
	return err
}

// TLSState returns the connection's TLS state and true, or false for a
// plain connection. Valid from ConnectionStart on.
func (x Conn) TLSState() (tls.ConnectionState, bool) {
	if x.c == nil || x.c.rc == nil {
		return tls.ConnectionState{}, false
	}
	return x.c.rc.TLSConnectionState()
}
