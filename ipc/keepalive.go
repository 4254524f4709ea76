package ipc

import (
	"time"

	"github.com/ipcframe/ipcframe/reactor"
)

// Keepalive and inactivity.
//
// A dialed connection pings (a KeepAlive packet) when it has neither sent
// nor received anything for Config.KeepAlive, and closes with ErrDeadPeer
// when it has received nothing for Config.DeadPeerTimeout. An accepted
// connection answers each ping with a ping, closes with ErrInactivity when
// a whole Config.InactivityTimeout window passes without a byte received,
// and with ErrKeepAliveFlood when it receives more than
// Config.MaxKeepAlives pings in one window. The defaults (ping every 30 s,
// dead after 90 s of silence, a 120 s inactivity window, 10 pings per
// window) never close a healthy idle connection: a client pings at most 5
// times per window and the server's answers keep the client's dead-peer
// timer fresh.
//
// The first-packet rule (Config.FirstPacketTimeout): an accepted connection
// that has received no complete packet FirstPacketTimeout after it opened
// closes with ErrFirstPacketTimeout; a dialed connection with nothing to
// send when it opens sends one KeepAlive packet, which the server answers.
//
// Every time here is read from Config.Clock, and the timers are loop
// timers on the same clock, so tests drive them with a manual clock.

var keepAlivePacket = []byte{packetTypeKeepAlive, 0, 0, 0}

// startTimers arms the connection's keepalive or inactivity timer (loop).
func (c *conn) startTimers() {
	cfg := &c.svc.cfg
	now := cfg.Clock.Now()
	c.lastRecv, c.lastSend = now, now
	var period time.Duration
	if c.rc.Dialed() {
		switch {
		case cfg.KeepAlive > 0:
			period = cfg.KeepAlive
		case cfg.DeadPeerTimeout > 0:
			period = cfg.DeadPeerTimeout
		}
	} else {
		if cfg.FirstPacketTimeout > 0 {
			c.firstTimer = c.rc.Loop().AfterFunc(cfg.FirstPacketTimeout, c.firstPacketDue)
		}
		if cfg.InactivityTimeout > 0 {
			period = cfg.InactivityTimeout
		}
	}
	if period <= 0 {
		return
	}
	c.tickPeriod = period
	c.tickFn = c.tick
	c.timer = c.rc.Loop().AfterFunc(period, c.tickFn)
}

// tick runs on the connection's loop: every tickPeriod on an accepted
// connection, when a ping or the dead-peer check is due on a dialed one.
func (c *conn) tick() {
	c.timer = nil
	if c.closed {
		return
	}
	cfg := &c.svc.cfg
	now := cfg.Clock.Now()
	if c.rc.Dialed() {
		if cfg.DeadPeerTimeout > 0 && now.Sub(c.lastRecv) >= cfg.DeadPeerTimeout {
			c.abort("keepalive", ErrDeadPeer)
			return
		}
		last := c.lastSend
		if c.lastRecv.After(last) {
			last = c.lastRecv
		}
		// Ping when silent, and also when only sending: a long upload with
		// nothing coming back would otherwise trip the dead-peer timeout.
		heard := c.lastRecv
		if c.lastPing.After(heard) {
			heard = c.lastPing
		}
		if cfg.KeepAlive > 0 && !c.raw && (now.Sub(last) >= cfg.KeepAlive || now.Sub(heard) >= cfg.KeepAlive) {
			c.writeKeepAlive()
			c.lastPing = now
		}
	} else {
		if !c.recvInWindow {
			c.abort("keepalive", ErrInactivity)
			return
		}
		c.recvInWindow, c.keepAlives = false, 0
	}
	c.releaseIdle()
	next := c.tickPeriod
	if c.rc.Dialed() {
		next = c.nextDialedTick(now)
	}
	c.timer = c.rc.Loop().AfterFunc(next, c.tickFn)
}

// nextDialedTick returns when a dialed connection's next tick is due: when
// its silence reaches KeepAlive (a ping is due) or, sooner, when
// DeadPeerTimeout would pass without a byte received. A fixed period would
// ping up to 2×KeepAlive after the last activity. When the ping is overdue
// (output pending, none written), it waits a whole period.
func (c *conn) nextDialedTick(now time.Time) time.Duration {
	cfg := &c.svc.cfg
	d := c.tickPeriod
	if cfg.KeepAlive > 0 {
		last := c.lastSend
		if c.lastRecv.After(last) {
			last = c.lastRecv
		}
		d = cfg.KeepAlive - now.Sub(last)
		heard := c.lastRecv
		if c.lastPing.After(heard) {
			heard = c.lastPing
		}
		d = min(d, cfg.KeepAlive-now.Sub(heard))
	}
	if cfg.DeadPeerTimeout > 0 {
		d = min(d, cfg.DeadPeerTimeout-now.Sub(c.lastRecv))
	}
	if d <= 0 {
		d = c.tickPeriod
	}
	return d
}

func (c *conn) writeKeepAlive() {
	if err := c.rc.Write(keepAlivePacket); err == nil {
		c.lastSend = c.svc.cfg.Clock.Now()
		c.countKeepAlive(true)
	}
}

// onKeepAlive implements readerEvents: a server answers pings up to the
// flood limit; a client only notes that the peer is alive (onData did).
func (c *conn) onKeepAlive() {
	c.countKeepAlive(false)
	if c.rc.Dialed() {
		return
	}
	c.keepAlives++
	if max := c.svc.cfg.MaxKeepAlives; max > 0 && c.keepAlives > max {
		c.abort("keepalive", ErrKeepAliveFlood)
		return
	}
	c.writeKeepAlive()
}

// firstPacketDue runs on the loop FirstPacketTimeout after an accepted
// connection opened, unless a complete packet arrived first (onData stops
// the timer then).
func (c *conn) firstPacketDue() {
	c.firstTimer = nil
	if c.closed || c.gotPkt {
		return
	}
	c.abort("first packet", ErrFirstPacketTimeout)
}

// openingKeepAlive sends one KeepAlive packet on a dialed connection that
// had nothing to send when it opened, so that a server applying the
// first-packet rule keeps it (Config.FirstPacketTimeout).
func (c *conn) openingKeepAlive() {
	if c.closed || c.raw || c.svc.cfg.FirstPacketTimeout < 0 || c.stats.traffic.bytesSent.Load() > 0 {
		return
	}
	c.writeKeepAlive()
}

// stopFirstTimer cancels the first-packet timer: a packet (or, on a raw
// connection, a byte) arrived (loop).
func (c *conn) stopFirstTimer() {
	if c.firstTimer != nil {
		c.firstTimer.Stop()
		c.firstTimer = nil
	}
}

// stopTimers cancels the connection's timers (loop, on close).
func (c *conn) stopTimers() {
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.stopFirstTimer()
}

// keepAliveTimer is the timer type, named for the conn struct.
type keepAliveTimer = *reactor.Timer
