package ipc

// The resend rules: what happens to the messages a closed connection held.

import (
	"cmp"
	"slices"
)

// connClosed takes back what a closed connection held (its loop): resendable
// messages go to the front of the queue in their send order, the others
// fail; then the pool reconnects if it needs to.
//
// A message whose cancel was asked is never resent: pool.cancel sets
// cancelAsked under p.mu, and the messages are sorted out here under p.mu,
// so either the cancel finds the message back in the queue, or this sees
// the flag.
func (p *pool) connClosed(c *conn, held []*msgStub, cause error) {
	var failed, resend, canceled []*msgStub
	slices.SortFunc(held, func(a, b *msgStub) int { return cmp.Compare(a.seq, b.seq) })
	p.mu.Lock()
	for _, st := range held {
		switch {
		case st.cancelAsked.Load():
			canceled = append(canceled, st)
		case st.resendable():
			p.svc.counters.resends.Add(1)
			st.started = false
			resend = append(resend, st)
		default:
			failed = append(failed, st)
		}
	}
	state := p.state.Load()
	// A connection that opened while the pool was aborting was never
	// registered (and had no start event): no stop event either.
	registered := false
	if i := p.indexLocked(c); i >= 0 {
		p.conns = slices.Delete(p.conns, i, i+1)
		p.stats.Disconnects++
		registered = true
	}
	if p.main == c {
		// Its synchronous messages go back to the front of the queue below,
		// under this lock: the next synchronous connection takes them first.
		p.main = nil
	}
	if state == poolAborting || state == poolStopped {
		failed = append(failed, resend...)
		resend = nil
	}
	for _, st := range resend {
		st.queued, st.owner = true, nil
	}
	if len(resend) > 0 {
		p.queue = append(resend, p.queue...)
		p.queuedN.Store(int32(len(p.queue)))
	}
	if registered && !c.retired && (state == poolOpen || state == poolClosing) {
		p.stale = true // resolve again before a later round (resolver_pool.go)
	}
	healthy := c.healthy()
	if healthy {
		p.failures = 0
	} else if registered {
		// Lost before it had proven itself: as a failed attempt, the next
		// dial waits for the backoff (even if other connections are up).
		p.failures++
		if p.retry == nil && (state == poolOpen || state == poolClosing) && p.needLocked() {
			p.armRetryLocked()
		}
	}
	if len(p.conns) == 0 && state == poolOpen {
		// The pool lost its last connection: one-shot messages still
		// queued fail now (SolidFrame's "clean one-shot" pass).
		failed = append(failed, p.takeOneShotLocked()...)
	}
	p.maybeDialLocked()
	p.scheduleRetryLocked()
	// Wake the idle connections if messages wait: the closed connection
	// may have been chosen, and not woken, for a message a handler sent
	// just before its connection failed (send skips the wake-up of a
	// connection running handlers, which pumps afterwards, unless it fails).
	var wake []*conn
	if len(p.queue) > 0 {
		for i := range p.conns {
			if pc := &p.conns[i]; pc.idle && pc.ready {
				pc.idle = false
				wake = append(wake, pc.c)
			}
		}
	}
	down := len(p.conns) == 0
	done := p.finishLocked()
	p.mu.Unlock()
	for _, w := range wake {
		w.rc.Wake()
	}
	if c.active && registered {
		p.event(PoolConnectionStop, c, cause)
		if down {
			p.event(PoolDisconnected, nil, cause)
		}
	}
	for _, st := range failed {
		switch state {
		case poolStopped:
			st.fail(ErrConnection, ErrServiceStopped)
		case poolAborting:
			st.fail(ErrConnection, ErrPoolClosed)
		default:
			st.fail(ErrConnection, cause)
		}
	}
	for _, st := range canceled {
		st.failCanceled()
	}
	p.finished(done)
}
