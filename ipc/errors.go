package ipc

import (
	"errors"
	"fmt"

	"github.com/ipcframe/ipcframe/reactor"
)

// Configuration and API errors.
var (
	// ErrInvalidConfig reports a Config field out of range; the error names
	// the field.
	ErrInvalidConfig = errors.New("ipc: invalid configuration")
	// ErrServiceStopped reports a call on a service that is stopping or
	// stopped.
	ErrServiceStopped = errors.New("ipc: service stopped")
	// ErrUnknownType reports a message whose Go type, or a received type id,
	// is not registered in the Protocol.
	ErrUnknownType = errors.New("ipc: unknown message type")
	// ErrNilMessage reports a nil message.
	ErrNilMessage = errors.New("ipc: nil message")
	// ErrPoolFull reports a pool whose queue holds MaxQueuedMessages.
	ErrPoolFull = errors.New("ipc: pool queue full")
	// ErrPoolClosing reports a send to a pool that is closing.
	ErrPoolClosing = errors.New("ipc: pool closing")
	// ErrPoolClosed reports a pool closed by ClosePool or AbortPool: the
	// cause of messages that fail because of it, and of its connections'
	// close.
	ErrPoolClosed = errors.New("ipc: pool closed")
	// ErrUnknownMessage reports a cancel of a message that is unknown or
	// already completed.
	ErrUnknownMessage = errors.New("ipc: unknown or completed message")
	// ErrUnknownPool reports a pool operation on a name with no pool.
	ErrUnknownPool = errors.New("ipc: unknown pool")
	// ErrConnectionGone reports a call on a connection handle (SendTo,
	// Activate, Close, Respond) whose connection has closed, or on the zero
	// Conn. It is returned by the call; compare ErrConnectionClosed, the
	// cause a connection closes with.
	ErrConnectionGone = errors.New("ipc: connection gone (closed before the call)")
)

// Per-message completion errors. A message completes exactly once, with nil
// or an error that matches one of these with errors.Is.
var (
	// ErrCanceled reports a message canceled locally.
	ErrCanceled = errors.New("ipc: message canceled")
	// ErrCanceledByPeer reports a message the peer asked to stop
	// (CancelRequest).
	ErrCanceledByPeer = errors.New("ipc: message canceled by peer")
	// ErrConnection reports a message that failed because its connection
	// failed or its pool closed. Use errors.As with *MessageError to learn
	// whether sending had started.
	ErrConnection = errors.New("ipc: connection failed")
)

// Connection-fatal errors: a connection closes with one of these (wrapped in
// a *ConnError) and every message it carried completes or is resent.
var (
	// ErrProtocol reports a protocol violation by the peer. The more
	// specific errors below wrap it.
	ErrProtocol = errors.New("ipc: protocol violation")
	// ErrBadPacketHeader reports an invalid packet type, unknown flags or
	// an oversize packet size.
	ErrBadPacketHeader = fmt.Errorf("%w: bad packet header", ErrProtocol)
	// ErrBadCommand reports an unknown command code.
	ErrBadCommand = fmt.Errorf("%w: unknown command", ErrProtocol)
	// ErrBadSlot reports a chunk for a writer slot beyond the reader limit,
	// or one that does not match the slot's state.
	ErrBadSlot = fmt.Errorf("%w: bad message slot", ErrProtocol)
	// ErrBadChunk reports a chunk length beyond the packet, or a message
	// whose bytes end before or after its EndMessage chunk.
	ErrBadChunk = fmt.Errorf("%w: bad chunk", ErrProtocol)
	// ErrBadMessage reports a message header or body that fails to decode.
	ErrBadMessage = fmt.Errorf("%w: bad message encoding", ErrProtocol)
	// ErrCompression reports a compressed packet that fails to decompress,
	// or one received with no codec configured.
	ErrCompression = fmt.Errorf("%w: compression", ErrProtocol)
	// ErrTruncated reports a connection that ended in the middle of a
	// packet.
	ErrTruncated = fmt.Errorf("%w: connection ended inside a packet", ErrProtocol)
	// ErrWindowExceeded reports a peer that sent more of a windowed
	// message than its receive window allowed (docs/protocol.md §7b).
	ErrWindowExceeded = fmt.Errorf("%w: message receive window exceeded", ErrProtocol)
	// ErrUnconsumedOverflow reports a connection whose asynchronous sinks
	// (AsyncSink) hold more bytes than the connection's cap: a peer that
	// ignores its windows or the connection's read pause
	// (docs/protocol.md §7a, §7b).
	ErrUnconsumedOverflow = fmt.Errorf("%w: too many unconsumed bytes", ErrProtocol)
	// ErrKeepAliveFlood reports too many keepalive packets in one window.
	ErrKeepAliveFlood = fmt.Errorf("%w: too many keepalive packets", ErrProtocol)
	// ErrDeadPeer reports a dialed connection that received nothing for
	// Config.DeadPeerTimeout. It is a timeout: it has a Timeout method
	// that returns true, like net.Error.
	ErrDeadPeer error = &timeoutError{"ipc: peer silent (dead peer timeout)"}
	// ErrInactivity reports a connection that was silent for too long. It
	// is a timeout (Timeout returns true).
	ErrInactivity error = &timeoutError{"ipc: inactivity timeout"}
	// ErrFirstPacketTimeout reports an accepted connection that sent no
	// complete packet within Config.FirstPacketTimeout of opening. It is a
	// timeout (Timeout returns true).
	ErrFirstPacketTimeout error = &timeoutError{"ipc: no complete packet within the first-packet timeout"}
	// ErrTooManyConnections is why a connection accepted beyond
	// Config.MaxAcceptedConnections is closed at once. Such a connection
	// never opens (no ConnectionStart or ConnectionStop); the error
	// appears in the logs, and Stats.Connections.Rejected counts them.
	ErrTooManyConnections = reactor.ErrTooManyConnections
	// ErrTooManyCanceled reports a connection closed because half of its
	// MaxResponseWait was held by requests canceled while they waited for
	// a response that never came. It closes once its other messages are
	// done; its pool replaces it.
	ErrTooManyCanceled = errors.New("ipc: connection retired: too many canceled requests left unanswered")
	// ErrConnectionClosed reports a connection closed by the peer or by a
	// local Close.
	ErrConnectionClosed = errors.New("ipc: connection closed")
)

// timeoutError is a sentinel that reports a timeout: errors.As with an
// interface{ Timeout() bool } finds it through any wrapping, as for
// net.Error. (A dial that exceeds Config.DialTimeout fails with an error
// wrapping context.DeadlineExceeded, which is a timeout in the same sense.)
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string { return e.msg }

// Timeout reports true: the error is a timeout.
func (e *timeoutError) Timeout() bool { return true }

// ConnError is the error a connection closes with: the operation, the peer
// address, the connection id and the cause.
type ConnError struct {
	Op     string // "read", "write", "dial", "close"
	Peer   string // remote address
	ConnID uint64
	Err    error
}

// Error implements error.
func (e *ConnError) Error() string {
	return fmt.Sprintf("ipc: conn %d %s %s: %v", e.ConnID, e.Op, e.Peer, e.Err)
}

// Unwrap returns the cause.
func (e *ConnError) Unwrap() error { return e.Err }

// MessageError is the completion error of a message: the kind (one of the
// per-message errors), whether sending had started, and the cause (for
// ErrConnection, the *ConnError).
type MessageError struct {
	Kind    error // ErrCanceled, ErrCanceledByPeer or ErrConnection
	Started bool  // some of the message had been written
	Cause   error // optional
}

// Error implements error.
func (e *MessageError) Error() string {
	s := e.Kind.Error()
	if e.Started {
		s += " (after sending started)"
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the kind and the cause, so errors.Is matches both.
func (e *MessageError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Cause}
}

// ErrUnexpectedResponse reports a response whose type is not the one the
// request's callback expects.
var ErrUnexpectedResponse = errors.New("ipc: unexpected response type")

// ErrEncode reports a message that could not be serialized, for example a
// field beyond the configured limits. The message fails; its connection
// carries on.
var ErrEncode = errors.New("ipc: message encoding failed")

// ErrBadName reports a destination name that is not "host:port".
var ErrBadName = errors.New("ipc: bad destination name")

// Name resolution errors (Config.Resolver). A pool that fails to resolve
// its name keeps its connections and the addresses of its last good answer
// (resolver_pool.go); a connection attempt fails with one of these only
// when the pool has no address at all.
var (
	// ErrResolve reports a destination name that could not be resolved:
	// the resolver failed, or answered nothing usable. The errors below
	// wrap it.
	ErrResolve = errors.New("ipc: name resolution failed")
	// ErrNoAddress reports a resolver that answered no address.
	ErrNoAddress = fmt.Errorf("%w: no address", ErrResolve)
	// ErrBadAddress reports a resolver answer whose entries are all
	// invalid: each must be an "ip:port" with a nonzero port (see
	// Resolver). Invalid entries beside valid ones are dropped and counted
	// (ResolverCounts.BadAddresses).
	ErrBadAddress = fmt.Errorf("%w: invalid address", ErrResolve)
	// ErrAddressGone is the cause a connection closes with when its
	// address left its pool's resolved addresses: it was retired (it took
	// no new messages and closed once its messages were done) and its pool
	// dials a current address instead.
	ErrAddressGone = errors.New("ipc: connection retired: its address is no longer resolved")
)

// Relay errors (docs/relay.md).
var (
	// ErrRelayDisabled reports RegisterRelayName on a service whose
	// Config.Relay is not enabled.
	ErrRelayDisabled = errors.New("ipc: relay disabled")
	// ErrRelayNoRoute is the cause a relay node fails a relayed message
	// with when no connection registered its name within
	// RelayConfig.WaitTimeout; the originator's message fails with
	// ErrCanceledByPeer.
	ErrRelayNoRoute = errors.New("ipc: relay: no connection registered the name")
	// ErrRelaySourceGone is the cause a relay node cancels a relayed
	// message with when its source abandoned it (CancelMessage, or the
	// source connection closed).
	ErrRelaySourceGone = errors.New("ipc: relay: source abandoned the message")
	// ErrRelayURL reports a received message whose relay path (header url)
	// is longer than RelayConfig.MaxURL or malformed; the connection that
	// sent it closes.
	ErrRelayURL = fmt.Errorf("%w: bad relay url", ErrProtocol)
	// ErrRelayFlood reports a source connection that made a relay hold
	// more relayed data than RelayConfig.SourceBytes plus MaxBuffers
	// packets, ignoring its credits; it closes.
	ErrRelayFlood = fmt.Errorf("%w: relayed data beyond the source's credits", ErrProtocol)
	// ErrRelayCredits reports a peer that returned more relay credits
	// (AckdCount) than Config.RelayCredits; the connection closes.
	ErrRelayCredits = fmt.Errorf("%w: more relay credits returned than lent", ErrProtocol)
	// ErrRelayStalled reports a destination connection that took no relayed
	// byte for RelayConfig.StallTimeout while relayed data waited for it;
	// it closes, and the messages it held fail. It is a timeout (Timeout
	// returns true).
	ErrRelayStalled error = &timeoutError{"ipc: relay: destination stalled"}
)
