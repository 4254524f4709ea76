package ipc

// Raw mode: bytes exchanged before a connection carries messages.
//
// A connection whose role is in Config.RawStart starts raw (SolidFrame's
// Raw start state): nothing is read as packets or written by the engine —
// no messages, no keepalive pings. The application writes bytes with
// Conn.SendRaw and receives them through Config.RawData, which says how
// many it consumed; the rest stays buffered (at most
// Config.MaxRawBuffered bytes, beyond which the connection closes with
// ErrRawOverflow). Conn.Activate or Conn.EnterPassive end the raw phase:
// raw bytes still queued are written first, then the buffered bytes are
// parsed as packets, then messages flow. Pool messages and messages sent to
// the connection wait meanwhile (a raw dialed connection is passive).
//
// Raw sends are queued on the connection under conn.mu (any goroutine) and
// written by the loop in conn.pump, so each completes exactly once: on the
// loop once written, with ErrNotRaw if the raw phase had ended, or with the
// close's error when the connection closes first.

import (
	"errors"
	"fmt"
)

// Roles selects connection roles (Config.RawStart).
type Roles uint8

// Connection roles.
const (
	// RoleDialed: connections a pool dials.
	RoleDialed Roles = 1 << iota
	// RoleAccepted: connections the listener accepts.
	RoleAccepted
)

// Raw mode errors.
var (
	// ErrRawOverflow: a raw connection held more than
	// Config.MaxRawBuffered bytes that RawData did not consume (a peer
	// flooding bytes before activation). The connection closes with it.
	ErrRawOverflow = fmt.Errorf("%w: too many raw bytes before activation", ErrProtocol)
	// ErrNotRaw: Conn.SendRaw on a connection whose raw phase had ended
	// (or never started) when the loop came to write the bytes.
	ErrNotRaw = errors.New("ipc: connection is not in raw mode")
)

// rawSend is one Conn.SendRaw waiting for the loop (conn.rawOut).
type rawSend struct {
	b    []byte
	done func(error)
}

// SendRaw writes data as it is on a connection in raw mode (see
// Config.RawStart), from any goroutine; it copies data. done, if not nil,
// is called once on the connection's loop: with nil once the bytes are
// handed to the socket, with ErrNotRaw if the raw phase ended before the
// loop came to them, or with the connection's close error. Raw sends are
// written in call order, all of them before any packet when the raw phase
// ends. SendRaw fails at once with ErrConnectionGone if the connection has
// closed.
func (x Conn) SendRaw(data []byte, done func(error)) error {
	c := x.c
	if c == nil || c.rc == nil {
		return ErrConnectionGone
	}
	b := append([]byte(nil), data...)
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return ErrConnectionGone
	}
	c.rawOut = append(c.rawOut, rawSend{b: b, done: done})
	c.rawOutN.Add(1)
	c.mu.Unlock()
	c.rc.Wake()
	return nil
}

// EnterPassive ends the raw phase of a connection that started raw
// (Config.RawStart) without activating it: the connection starts reading
// packets and carries messages sent to it; a dialed connection takes pool
// messages only after Activate (an accepted one needs nothing more). On a
// connection that is not raw it does nothing.
func (x Conn) EnterPassive() error {
	if x.c == nil {
		return ErrConnectionGone
	}
	c := x.c
	c.rawExit.CompareAndSwap(rawStay, rawToPassive)
	if err := c.rc.Execute(func() { c.enterPassiveOnLoop() }); err != nil {
		return fmt.Errorf("%w: %w", ErrConnectionGone, err)
	}
	return nil
}

// startRaw reports whether a connection of this role starts raw (OnOpen).
func (c *conn) startRaw() bool {
	role := RoleAccepted
	if c.pool != nil {
		role = RoleDialed
	}
	return c.svc.cfg.RawStart&role != 0
}

// onRawData hands received bytes to Config.RawData (loop) and keeps what it
// did not consume, up to MaxRawBuffered. It consumes every byte from the
// reactor: the leftovers wait in rawIn, so that leaving the raw phase can
// parse them at once instead of waiting for the next read.
//
// Once Activate or EnterPassive has been called (rawExit), from RawData or
// any goroutine, the bytes are packets: RawData is not called again and
// the raw phase ends here, on the loop, without waiting for the Execute
// those calls queued (which may run only after many more reads; the
// peer's packets would otherwise pile up as raw bytes).
func (c *conn) onRawData(data []byte) int {
	buf := data
	if len(c.rawIn) > 0 {
		c.rawIn = append(c.rawIn, data...)
		buf = c.rawIn
	}
	n := 0
	if h := c.svc.cfg.RawData; h != nil && c.rawExit.Load() == rawStay {
		n = min(max(h(Conn{c}, buf), 0), len(buf))
	}
	rest := buf[n:]
	exit := c.rawExit.Load()
	if exit == rawStay && len(rest) > c.svc.cfg.MaxRawBuffered {
		c.rawIn = nil
		c.log.Debug("ipc: closing on raw flood", "buffered", len(rest))
		c.abort("read", ErrRawOverflow)
		return len(data)
	}
	if len(rest) == 0 {
		c.rawIn = c.rawIn[:0]
	} else {
		// copy handles the overlap when rest is inside rawIn.
		c.rawIn = append(c.rawIn[:0], rest...)
	}
	switch exit {
	case rawToActive:
		c.activateOnLoop()
	case rawToPassive:
		c.enterPassiveOnLoop()
	default:
		c.pump()
	}
	return len(data)
}

// Values of conn.rawExit: what Activate or EnterPassive asked.
const (
	rawStay      int32 = iota // neither called yet
	rawToPassive              // EnterPassive
	rawToActive               // Activate
)

// enterPassiveOnLoop ends the raw phase (Conn.EnterPassive).
func (c *conn) enterPassiveOnLoop() {
	if c.closed {
		return
	}
	c.leaveRawOnLoop()
	c.pump()
}

// leaveRawOnLoop ends the raw phase: queued raw sends are written, then
// the bytes RawData left are parsed as packets. Nothing happens on a
// connection that is not raw.
func (c *conn) leaveRawOnLoop() {
	if !c.raw || c.closed {
		return
	}
	c.flushRaw(true)
	c.raw = false
	in := c.rawIn
	c.rawIn = nil
	if len(in) > 0 && !c.closed {
		c.consume(in)
	}
}

// flushRaw writes queued raw sends (loop): while the socket is writable,
// or all of them when all is set (the raw phase is ending). On a
// connection no longer raw they fail with ErrNotRaw.
func (c *conn) flushRaw(all bool) {
	for c.rawOutN.Load() > 0 && !c.closed {
		if c.raw && !all && !c.rc.Writable() {
			return
		}
		c.mu.Lock()
		if len(c.rawOut) == 0 {
			c.mu.Unlock()
			return
		}
		s := c.rawOut[0]
		c.rawOut[0] = rawSend{}
		c.rawOut = c.rawOut[1:]
		c.rawOutN.Add(-1)
		c.mu.Unlock()
		var err error
		if !c.raw {
			err = ErrNotRaw
		} else if e := c.rc.Write(s.b); e != nil {
			err = fmt.Errorf("%w: %w", ErrConnectionGone, e)
		} else {
			c.lastSend = c.svc.cfg.Clock.Now()
			c.countSent(len(s.b))
		}
		if s.done != nil {
			s.done(err)
		}
	}
}

// failRaw completes the raw sends a closed connection still held (loop,
// onClose; the caller took them under mu).
func failRaw(sends []rawSend, cause error) {
	for _, s := range sends {
		if s.done != nil {
			s.done(cause)
		}
	}
}
