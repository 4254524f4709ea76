package reactor

import "errors"

// Errors reported by the reactor; test them with errors.Is.
var (
	// ErrClosed reports use of a closed connection or reactor.
	ErrClosed = errors.New("reactor: connection closed")
	// ErrInboundOverflow reports a handler that left more than MaxInbound
	// bytes unconsumed.
	ErrInboundOverflow = errors.New("reactor: too many unconsumed inbound bytes")
	// ErrStopped reports use of a reactor that is stopped or not started.
	ErrStopped = errors.New("reactor: stopped")
	// ErrTooManyConnections is why a connection accepted beyond
	// Config.MaxAccepted is closed at once (it is logged, never returned:
	// the Handler does not see such a connection).
	ErrTooManyConnections = errors.New("reactor: too many accepted connections")
	// ErrDial reports a failed dial; the cause is wrapped.
	ErrDial = errors.New("reactor: dial failed")
)
