package ipc

// A destination that never reads (docs/relay.md, "Failures"): relayed data
// waits for it, holding its messages' windows (and, from a source without
// windows, up to that source's SourceBytes and credits). When it has
// taken nothing (its socket full, or its relay credits all out) for
// RelayConfig.StallTimeout while relayed data waits,
// the connection closes with ErrRelayStalled; its messages fail and their
// sources are told (CancelRequest), which returns their credits.

import "github.com/ipcframe/ipcframe/internal/clock"

// relayStall is a connection's stall watch (loop-owned).
type relayStall struct {
	timer clock.Timer // armed while relayed output waits on a full socket
	armed bool
}

// watchStallOnLoop arms the stall timer when relayed output waits on the
// peer (loop, after each pump).
func (rc *relayConn) watchStallOnLoop() {
	c := rc.c
	d := rc.eng.cfg.StallTimeout
	if d < 0 || rc.stall.armed || c.closed || !rc.blocked() {
		return
	}
	rc.stall.armed = true
	if rc.stall.timer == nil {
		rc.stall.timer = rc.eng.clock.AfterFunc(d, rc.stallTimerFired)
	} else {
		rc.stall.timer.Reset(d)
	}
}

// stallTimerFired runs on the clock's goroutine and hands the check to the
// loop.
func (rc *relayConn) stallTimerFired() {
	c := rc.c
	_ = c.rc.Execute(rc.stallCheckOnLoop)
}

// stallCheckOnLoop closes the connection if it still stalls: relayed
// output waiting on the peer, nothing written for StallTimeout.
func (rc *relayConn) stallCheckOnLoop() {
	c := rc.c
	rc.stall.armed = false
	if c.closed || !rc.blocked() {
		return
	}
	d := rc.eng.cfg.StallTimeout
	if idle := rc.eng.clock.Now().Sub(c.lastSend); idle < d {
		rc.stall.armed = true
		rc.stall.timer.Reset(d - idle)
		return
	}
	c.log.Debug("ipc: relay destination stalled", "timeout", d)
	c.abort("write", ErrRelayStalled)
}

// blocked reports whether relayed output waits on the peer: its socket
// takes nothing more, or it returned none of the relay credits it was
// sent (a peer that does not read returns none).
func (rc *relayConn) blocked() bool {
	c := rc.c
	return (!c.rc.Writable() || c.w.credits == 0) && c.w.relayOutput()
}

// stopStall stops the timer (loop, at close).
func (rc *relayConn) stopStall() {
	if rc.stall.timer != nil {
		rc.stall.timer.Stop()
	}
}

// relayOutput reports whether a relayed message waits to be written.
func (w *writer) relayOutput() bool {
	for k := 0; k < w.wq.len(); k++ {
		if w.slots[w.wq.at(k)].st.relay != nil {
			return true
		}
	}
	return false
}
