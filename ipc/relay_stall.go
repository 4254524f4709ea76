package ipc

// A destination that never reads (docs/relay.md, "Failures"): relayed data
// waits for it, holding its sources' buffers and credits. When its socket
// has taken nothing for RelayConfig.StallTimeout while relayed data waits,
// the connection closes with ErrRelayStalled; its messages fail and their
// sources are told (CancelRequest), which returns their credits.

import "github.com/ipcframe/ipcframe/internal/clock"

// relayStall is a connection's stall watch (loop-owned).
type relayStall struct {
	timer clock.Timer // armed while relayed output waits on a full socket
	armed bool
}

// watchStallOnLoop arms the stall timer when relayed output waits for a
// socket that takes nothing (loop, after each pump).
func (rc *relayConn) watchStallOnLoop() {
	c := rc.c
	d := rc.eng.cfg.StallTimeout
	if d < 0 || rc.stall.armed || c.closed || c.rc.Writable() || !c.w.relayOutput() {
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
// output waiting, the socket full, nothing written for StallTimeout.
func (rc *relayConn) stallCheckOnLoop() {
	c := rc.c
	rc.stall.armed = false
	if c.closed || c.rc.Writable() || !c.w.relayOutput() {
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
