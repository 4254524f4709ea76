package ipc

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/ipcframe/ipcframe/buffers"
	"github.com/ipcframe/ipcframe/compress"
	"github.com/ipcframe/ipcframe/internal/clock"
	"github.com/ipcframe/ipcframe/serde"
)

// Config tunes a Service. The zero value of every field means its default
// (see defaults.go); only Protocol is required. NewService copies the Config,
// so later changes to the caller's struct have no effect.
type Config struct {
	// Protocol lists the message types this service sends and receives.
	// Required.
	Protocol *Protocol

	// Listen is the "host:port" to accept connections on; port 0 picks an
	// ephemeral port (see Service.Addr). Empty means no listener: the
	// service only dials.
	Listen string

	// Resolver turns a destination name into addresses. Nil means the
	// system resolver (net.DefaultResolver), so every service can dial.
	// SRVResolver reads DNS SRV records; any other service discovery plugs
	// in as a Resolver (see its doc for the contract).
	Resolver Resolver
	// ResolveInterval is how often a pool with open connections resolves
	// its name again, so that it dials new addresses and retires its
	// connections to addresses that left the answer (ErrAddressGone).
	// Default 30 s; negative disables the periodic resolution (the name is
	// still resolved again after failures). A name that is an IP address,
	// with the system resolver, is never resolved again.
	ResolveInterval time.Duration
	// MinResolveInterval is the shortest time between two resolutions of
	// one pool's name. A failed connection or connection attempt makes the
	// pool resolve again before its next attempt, but not sooner than
	// this after the previous resolution; until then it dials the
	// addresses it has. Default 5 s, or ResolveInterval if that is
	// shorter; at most ResolveInterval; negative means no minimum. A failed
	// periodic resolution is retried after this, doubling up to
	// ResolveInterval.
	MinResolveInterval time.Duration

	// Loops is the number of event loops. Zero means GOMAXPROCS.
	Loops int

	// BufferSize is the size, in bytes, of the buffers messages are
	// serialized into: each packet is at most this long. Default (zero)
	// 4 KiB, except toward a peer that sent the window hello (an ipcframe
	// peer, which reads any packet up to 64 KiB: docs/protocol.md §7b):
	// there the packets that continue a message of more than 16 KiB are
	// up to WriteBatch or 64 KiB long, whichever is smaller, unless they
	// carry relay-bound chunks. A value set here is used with every peer.
	// Limits [buffers.MinSize, buffers.MaxSize] (64 B to 64 KiB).
	BufferSize int

	// MaxActiveConnections bounds the connections of one pool. Default 1.
	MaxActiveConnections int
	// MaxPendingConnections bounds the connections of one pool being set up
	// (resolving or dialing) at once. Default 1.
	MaxPendingConnections int
	// MaxQueuedMessages bounds the messages waiting in one pool for a
	// connection; Send beyond it fails with ErrPoolFull. Default 1024.
	MaxQueuedMessages int

	// MaxMultiplex bounds the messages a connection's writer interleaves
	// (being written). Default 64.
	MaxMultiplex int
	// MaxResponseWait bounds the requests a connection has sent and waits
	// responses for. Default 128.
	MaxResponseWait int
	// MaxReaderSlots is the number of sender slots a reader accepts: the
	// peer's MaxMultiplex+MaxResponseWait must not exceed it. Default 192.
	MaxReaderSlots int
	// MessageWindow is the receive window of each message a peer sends,
	// in bytes: the most body bytes of one message this end has received
	// and not yet consumed (docs/protocol.md §7b). It is granted only to
	// peers that speak ipcframe's window extension, which this end
	// announces with a hello packet when the connection opens; a peer
	// that does not (a C++ SolidFrame service) gets TCP back-pressure
	// instead. Zero means 4 MiB; at least 256 KiB (the extension's
	// initial window); negative turns the extension off (no hello; the
	// writer still obeys a peer's windows).
	MessageWindow int
	// ContinuousPackets is how many consecutive packets one message may fill
	// before the writer turns to other waiting messages. Default 4.
	ContinuousPackets int

	// TypeIDSize is the width of the message type id on the wire: 1 (a raw
	// byte, SolidFrame's Protocol<uint8_t>) or 2 (little-endian uint16).
	// Default 1. Both peers must agree.
	TypeIDSize int

	// Compression compresses each packet when it saves bytes; nil sends
	// everything raw. Both peers must configure the same codec.
	Compression compress.Codec
	// CompressionBackoff is how a connection stops trying to compress
	// packets that do not compress, and probes again later
	// (compress.Backoff). The zero value means the defaults: back off after
	// 4 misses in a row, skip 8 packets, doubling to 256 per probe.
	CompressionBackoff compress.Backoff

	// TLSServer, when set, makes the listener TLS-only with this
	// configuration (it needs Certificates or GetCertificate; set ClientAuth
	// and ClientCAs for mutual TLS). Nil accepts plain TCP. The service
	// uses a clone.
	TLSServer *tls.Config
	// TLSClient, when set, makes every dialed connection TLS with this
	// configuration. The peer is verified as the config says (on unless
	// InsecureSkipVerify); an empty ServerName is taken from the host part
	// of the destination name, so "db.example:7000" verifies
	// "db.example". Set Certificates for mutual TLS. A nil
	// ClientSessionCache gets a service-wide LRU cache, so a pool that
	// re-dials resumes its TLS 1.3 session instead of a full handshake.
	// Nil dials plain TCP. The service uses a clone.
	TLSClient *tls.Config
	// TLSHandshakeTimeout bounds a TLS handshake, from the TCP open
	// (accepted) or the end of the TCP connect (dialed). Default 10 s.
	TLSHandshakeTimeout time.Duration
	// MaxTLSHandshakes bounds the TLS handshakes running at once; each runs
	// on a short-lived goroutine, further connections wait their turn
	// (their timeout runs). Default 256.
	MaxTLSHandshakes int
	// TLSHandshakeFailed, if set, receives each failed handshake of an
	// accepted connection (dialed ones are PoolConnectFailed events), with
	// the peer address and an error matching ErrTLSHandshake and, when
	// known, ErrTLSNotTLS, ErrTLSHandshakeTimeout, ErrTLSCertExpired,
	// ErrTLSCertName or ErrTLSCertUntrusted. It runs on a handshake
	// goroutine or an event loop and must not block.
	TLSHandshakeFailed func(remote string, err error)

	// Limits bounds decoded strings, containers and streams. A received
	// string or []byte grows as its bytes arrive, except that a connection
	// that has delivered a value in full gets the whole array of a later
	// value no larger at once (at most the largest such value over all its
	// values under way; docs/tuning.md §2.8).
	Limits serde.Limits

	// Registry resolves polymorphic message fields (serde.Visitor.Any); nil
	// when no message uses them.
	Registry *serde.Registry

	// WriteBatch is how many bytes of packets a connection prepares before
	// handing them to the socket in one write. Default 64 KiB; at least
	// BufferSize. A connection whose large message has been sent alone for
	// 16 MiB writes up to 256 KiB (or WriteBatch, if larger) at once until
	// a small message passes beside it (docs/tuning.md §2.13).
	WriteBatch int

	// BusyPoll is how long an event loop keeps polling its sockets, without
	// blocking, after handling traffic (reactor.Config.BusyPoll). It trades
	// up to this much CPU time per burst of activity for a fast reaction to
	// the next packet: on the 2-vCPU VMs measured, it cut the concurrency-1
	// round trip from about 68 µs to about 10 µs. Default 50 µs; negative
	// disables it.
	BusyPoll time.Duration

	// KeepAlive is how long a dialed connection may stay silent (nothing
	// sent or received) before it sends a KeepAlive packet. Default 30 s;
	// negative disables pings.
	KeepAlive time.Duration
	// DeadPeerTimeout closes a dialed connection that has received nothing
	// (no data, no ping answer) for this long, with ErrDeadPeer. Default
	// 3×KeepAlive (90 s); negative disables it.
	DeadPeerTimeout time.Duration
	// InactivityTimeout closes an accepted connection when a whole window
	// of this length passes without a byte received, with ErrInactivity.
	// Default 120 s; negative disables it. Keep it above the peers'
	// KeepAlive.
	InactivityTimeout time.Duration
	// MaxKeepAlives is how many KeepAlive packets an accepted connection
	// answers per InactivityTimeout window; one more closes it with
	// ErrKeepAliveFlood. Default 10; negative disables the limit. Keep it
	// above InactivityTimeout/KeepAlive + 1 of the peers.
	MaxKeepAlives int

	// MaxAcceptedConnections bounds the accepted connections open at once
	// (dialed ones do not count). A connection accepted beyond it is closed
	// at once, before any TLS handshake or ConnectionStart, and counted in
	// Stats.Connections.Rejected; the connections already open are served
	// as usual. Zero means no limit; negative is invalid.
	MaxAcceptedConnections int
	// FirstPacketTimeout is the first-packet rule, in both roles. An
	// accepted connection that has not received one complete packet this
	// long after it opened closes with ErrFirstPacketTimeout (counted in
	// Stats.Connections.FirstPacketTimeouts), so a socket that connects
	// and stays silent, or sends a few bytes and stalls, is dropped in
	// seconds instead of after an inactivity window. For a TLS connection
	// the time counts from the end of the handshake, which
	// TLSHandshakeTimeout bounds; on a connection that starts raw
	// (RawStart) its first raw bytes count as the packet. A dialed
	// connection that has nothing to send when it opens (and does not
	// start raw; the window hello, MessageWindow, counts as something)
	// sends one KeepAlive packet, so that a server applying the rule keeps
	// it. Default 5 s (SolidFrame's newer servers
	// drop silent sockets after 5 s); negative disables both the timer
	// and the opening KeepAlive (SolidFrameProfile does: SolidFrame 6.0
	// peers count that KeepAlive against their ping limit, and their
	// clients may stay silent until their first ping).
	FirstPacketTimeout time.Duration

	// DialTimeout bounds one connection attempt. Default 10 s.
	DialTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the exponential backoff (with
	// jitter) between failed connection attempts. Defaults 50 ms and 10 s.
	ReconnectMin, ReconnectMax time.Duration

	// StartPassive makes dialed connections start passive: they carry only
	// messages sent to the connection itself (SendTo, responses) until
	// Conn.Activate, typically called after a handshake from
	// ConnectionStart or a handler. Default false: connections start
	// active and take messages from their pool at once.
	StartPassive bool

	// RawStart makes connections of the roles it names (RoleDialed,
	// RoleAccepted) start in raw mode: the engine reads and writes no
	// packets (no messages, no keepalive pings) until the application ends
	// the raw phase with Conn.Activate or Conn.EnterPassive. Meanwhile
	// Conn.SendRaw writes bytes as they are and RawData receives what
	// arrives: a proxy handshake, a custom preamble. Messages sent to the
	// connection or its pool wait. With TLS, the TLS handshake comes first
	// and the raw bytes travel inside it. Zero: no connection starts raw.
	RawStart Roles
	// RawData, if set, receives the bytes that arrive on a connection in
	// raw mode, on its event loop (it must not block; data is valid only
	// during the call). It returns how many leading bytes it consumed
	// (clamped to [0, len(data)]); the rest stays buffered and is
	// presented again, followed by newer bytes, on the next call. Once
	// Activate or EnterPassive has been called (from RawData itself, say,
	// when the handshake is done), RawData is not called again: the bytes
	// it left, and everything after, are parsed as packets. Nil consumes
	// nothing.
	RawData func(c Conn, data []byte) (consumed int)
	// MaxRawBuffered bounds the bytes a raw connection keeps unconsumed by
	// RawData; one more closes the connection with ErrRawOverflow (a peer
	// flooding bytes before activation). Default 64 KiB; at most 1 MiB.
	MaxRawBuffered int

	// Proxy, if set, makes every pool reach its destination through this
	// SOCKS5 proxy (RFC 1928 CONNECT), unless the pool's PoolOptions say
	// otherwise. The handshake runs in the dial step, before TLS (which
	// then runs end to end with the destination). Nil connects directly.
	// The service uses a copy.
	Proxy *SOCKS5

	// PoolEvent, if set, receives the life events of every pool
	// (connections opening, activating, failing, closing; the pool
	// disconnected or closed). It runs on an event loop or a dialing
	// goroutine and must not block. An attempt the pool starts because a
	// connection opened or an attempt failed starts after that event has
	// been delivered, so its own events never come before it.
	PoolEvent func(PoolEvent)

	// ConnectionStart, if set, is called on the connection's event loop
	// when a connection opens (accepted or dialed). It must not block.
	ConnectionStart func(ConnInfo)
	// ConnectionStop, if set, is called on the connection's event loop once
	// per connection that had opened, with the error it closed with (a
	// *ConnError). It must not block.
	ConnectionStop func(ConnInfo, error)

	// Relay makes the service a relay node that forwards messages
	// addressed "relay-host:port/name" to the connection registered as
	// name (docs/relay.md). The zero value relays nothing: a received
	// message with a relay path is dropped and its sender's message fails
	// with ErrCanceledByPeer.
	Relay RelayConfig
	// RelayCredits is how many packets carrying chunks of relay-bound
	// messages (sent to "host:port/name", or answering a relayed message) a
	// connection sends before the relay returns credits (AckdCount); the
	// rest wait in the writer while other messages go on. Default 256;
	// limits [1, 4096]. A relay's RelayConfig.MaxBuffers must be at least
	// its peers' RelayCredits.
	RelayCredits int

	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger

	// Clock measures every timer of the service: keepalive, dead-peer and
	// inactivity checks, the reconnect backoff and the resolution intervals
	// (it is also the reactor's loop clock). Nil means the system clock. It is a hook for
	// the module's own tests, which pass a clock.Manual and move time
	// themselves (docs/architecture.md, "Time"); DialTimeout and Stop's
	// context use the system clock.
	Clock clock.Clock

	// bufferAuto is set by withDefaults when BufferSize was zero: packets
	// grow to largePacketSize toward peers that sent the hello (writer.go).
	bufferAuto bool
}

// ConnInfo describes a connection to the ConnectionStart and ConnectionStop
// hooks.
type ConnInfo struct {
	Conn   Conn   // handle for SendTo, Activate, Close
	ID     uint64 // unique within the service
	Remote string // the peer's address (through a proxy: the proxy's)
	Pool   string // the destination name for dialed connections; "" when accepted
}

// withDefaults returns a copy of c with defaults filled in, validated.
func (c Config) withDefaults() (Config, error) {
	if c.Protocol == nil {
		return c, fmt.Errorf("%w: Protocol is required", ErrInvalidConfig)
	}
	c.Clock = clock.Or(c.Clock)
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defD := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	c.bufferAuto = c.BufferSize == 0
	def(&c.BufferSize, DefaultBufferSize)
	def(&c.MaxActiveConnections, DefaultMaxActiveConnections)
	def(&c.MaxPendingConnections, DefaultMaxPendingConnections)
	def(&c.MaxQueuedMessages, DefaultMaxQueuedMessages)
	def(&c.MaxMultiplex, DefaultMaxMultiplex)
	def(&c.MaxResponseWait, DefaultMaxResponseWait)
	def(&c.MaxReaderSlots, DefaultMaxReaderSlots)
	def(&c.ContinuousPackets, DefaultContinuousPackets)
	def(&c.MessageWindow, DefaultMessageWindow)
	def(&c.TypeIDSize, DefaultTypeIDSize)
	def(&c.WriteBatch, DefaultWriteBatch)
	defD(&c.DialTimeout, DefaultDialTimeout)
	defD(&c.KeepAlive, DefaultKeepAlive)
	if c.DeadPeerTimeout == 0 {
		c.DeadPeerTimeout = 3 * c.KeepAlive
		if c.KeepAlive < 0 {
			c.DeadPeerTimeout = -1
		}
	}
	defD(&c.InactivityTimeout, DefaultInactivityTimeout)
	def(&c.MaxKeepAlives, DefaultMaxKeepAlives)
	defD(&c.FirstPacketTimeout, DefaultFirstPacketTimeout)
	defD(&c.ReconnectMin, DefaultReconnectMin)
	defD(&c.ReconnectMax, DefaultReconnectMax)
	defD(&c.ResolveInterval, DefaultResolveInterval)
	if c.MinResolveInterval == 0 {
		c.MinResolveInterval = DefaultMinResolveInterval
		if c.ResolveInterval > 0 {
			c.MinResolveInterval = min(c.MinResolveInterval, c.ResolveInterval)
		}
	}
	c.Limits = c.Limits.WithDefaults()
	if c.Resolver == nil {
		c.Resolver = SystemResolver{}
	}
	defD(&c.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
	def(&c.MaxTLSHandshakes, DefaultMaxTLSHandshakes)
	def(&c.RelayCredits, DefaultRelayCredits)
	if c.Relay.Enabled {
		def(&c.Relay.MaxBuffers, DefaultRelayMaxBuffers)
		def(&c.Relay.SourceBytes, DefaultRelaySourceBytes)
		defD(&c.Relay.WaitTimeout, DefaultRelayWaitTimeout)
		def(&c.Relay.MaxURL, DefaultRelayMaxURL)
		defD(&c.Relay.StallTimeout, DefaultRelayStallTimeout)
	}
	if c.TLSServer != nil {
		c.TLSServer = c.TLSServer.Clone()
	}
	if c.TLSClient != nil {
		c.TLSClient = c.TLSClient.Clone()
		if c.TLSClient.ClientSessionCache == nil {
			c.TLSClient.ClientSessionCache = tls.NewLRUClientSessionCache(0)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	def(&c.MaxRawBuffered, DefaultMaxRawBuffered)
	if c.Proxy != nil {
		p := *c.Proxy
		c.Proxy = &p
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	bad := func(field string, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
	}
	if err := buffers.CheckSize(c.BufferSize); err != nil {
		return bad("BufferSize", "%v", err)
	}
	positive := []struct {
		name string
		v    int
	}{
		{"MaxActiveConnections", c.MaxActiveConnections},
		{"MaxPendingConnections", c.MaxPendingConnections},
		{"MaxQueuedMessages", c.MaxQueuedMessages},
		{"MaxMultiplex", c.MaxMultiplex},
		{"MaxResponseWait", c.MaxResponseWait},
		{"MaxReaderSlots", c.MaxReaderSlots},
		{"ContinuousPackets", c.ContinuousPackets},
		{"Loops", c.Loops + 1},
	}
	for _, p := range positive {
		if p.v < 1 {
			return bad(p.name, "must be positive")
		}
	}
	if c.MaxMultiplex+c.MaxResponseWait > 1<<20 {
		return bad("MaxMultiplex", "MaxMultiplex+MaxResponseWait above 1<<20")
	}
	if c.MessageWindow > 0 && c.MessageWindow < windowInitial {
		return bad("MessageWindow", "must be at least %d or negative, got %d", windowInitial, c.MessageWindow)
	}
	if c.TypeIDSize != 1 && c.TypeIDSize != 2 {
		return bad("TypeIDSize", "must be 1 or 2, got %d", c.TypeIDSize)
	}
	if c.WriteBatch < c.BufferSize {
		return bad("WriteBatch", "must be at least BufferSize (%d)", c.BufferSize)
	}
	if c.TLSHandshakeTimeout < 0 || c.MaxTLSHandshakes < 0 {
		return bad("TLSHandshakeTimeout", "TLS durations and bounds must be positive")
	}
	if c.MaxAcceptedConnections < 0 {
		return bad("MaxAcceptedConnections", "must not be negative, got %d", c.MaxAcceptedConnections)
	}
	if c.DialTimeout < 0 {
		return bad("DialTimeout", "must not be negative, got %v", c.DialTimeout)
	}
	if c.ReconnectMin < 0 {
		return bad("ReconnectMin", "must not be negative, got %v", c.ReconnectMin)
	}
	if c.ReconnectMax < c.ReconnectMin {
		return bad("ReconnectMax", "must be at least ReconnectMin (%v), got %v", c.ReconnectMin, c.ReconnectMax)
	}
	if c.RelayCredits < 1 || c.RelayCredits > maxRelayCredits {
		return bad("RelayCredits", "must be in [1, %d], got %d", maxRelayCredits, c.RelayCredits)
	}
	if err := c.Relay.validate(); err != nil {
		return bad("Relay", "%v", err)
	}
	if c.ResolveInterval > 0 && c.MinResolveInterval > c.ResolveInterval {
		return bad("MinResolveInterval", "must not exceed ResolveInterval (%v), got %v", c.ResolveInterval, c.MinResolveInterval)
	}
	if c.MaxRawBuffered < 0 || c.MaxRawBuffered > maxRawBuffered {
		return bad("MaxRawBuffered", "must be in [1, %d], got %d", maxRawBuffered, c.MaxRawBuffered)
	}
	if c.RawStart&^(RoleDialed|RoleAccepted) != 0 {
		return bad("RawStart", "unknown roles %#x", uint8(c.RawStart))
	}
	if err := c.Proxy.validate(); err != nil {
		return bad("Proxy", "%v", err)
	}
	if c.Protocol.maxID() >= 1<<(8*c.TypeIDSize) {
		return bad("TypeIDSize", "protocol has type id %d, too wide for %d byte(s)", c.Protocol.maxID(), c.TypeIDSize)
	}
	return nil
}
