package ipc

import "fmt"

// Conn is a handle on one connection, accepted or dialed. It is a small
// comparable value, valid from any goroutine and after the connection
// closed (operations then fail with ErrConnectionGone). The zero Conn is
// not a connection.
type Conn struct {
	c *conn
}

// ID is unique within the service.
func (x Conn) ID() uint64 {
	if x.c == nil {
		return 0
	}
	return x.c.id
}

// RemoteAddr returns the peer's address.
func (x Conn) RemoteAddr() string {
	if x.c == nil {
		return ""
	}
	return x.c.remote
}

// Pool returns the destination name of a dialed connection, "" for an
// accepted one.
func (x Conn) Pool() string {
	if x.c == nil || x.c.pool == nil {
		return ""
	}
	return x.c.pool.name
}

// Activate moves a connection that started passive (Config.StartPassive)
// to the active state: it starts taking messages from its pool. Messages
// sent to the connection itself flow in both states, which is what a
// login or version handshake uses before activating. On a connection in
// raw mode (Config.RawStart) it also ends the raw phase: raw sends still
// queued are written first, then the bytes RawData left are parsed as
// packets. It returns before the loop has acted on it.
func (x Conn) Activate() error {
	if x.c == nil {
		return ErrConnectionGone
	}
	c := x.c
	c.rawExit.Store(rawToActive) // raw.go: bytes from now on are packets
	if err := c.rc.Execute(func() { c.activateOnLoop() }); err != nil {
		return fmt.Errorf("%w: %w", ErrConnectionGone, err)
	}
	return nil
}

// Close closes the connection gracefully: what has been written drains,
// then the socket closes. Messages it still held are resent or fail
// following their kinds' rules (package doc).
func (x Conn) Close() error {
	if x.c == nil || x.c.rc == nil {
		return ErrConnectionGone
	}
	x.c.rc.Close(ErrConnectionClosed)
	return nil
}

// CloseWithError is Close with the application's reason: ConnectionStop
// and the messages that fail because of the close see an error matching
// both ErrConnectionClosed and err (for example a sentinel of a login or
// version handshake that the peer broke).
func (x Conn) CloseWithError(err error) error {
	if x.c == nil || x.c.rc == nil {
		return ErrConnectionGone
	}
	c := x.c
	c.rc.Close(&ConnError{Op: "close", Peer: c.remote, ConnID: c.id, Err: fmt.Errorf("%w: %w", ErrConnectionClosed, err)})
	return nil
}
