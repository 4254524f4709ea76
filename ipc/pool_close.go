package ipc

// Ending a pool: ClosePool (delayed), AbortPool (forced) and Service.Stop.

import ()

// closeIdle closes c if the pool is closing and c has nothing left to do
// (c's loop, after a pump).
func (p *pool) closeIdle(c *conn) {
	if p.state.Load() != poolClosing || c.w.busy() || c.directN.Load() > 0 {
		return
	}
	p.mu.Lock()
	empty := len(p.queue) == 0
	p.mu.Unlock()
	if empty {
		c.rc.Close(ErrPoolClosed)
	}
}

// close starts closing the pool: delayed (queued and in-flight messages
// finish first, on the connections the pool has or gets) or forced
// (everything fails now). done runs once the last connection has closed.
// Sends to the pool fail with ErrPoolClosing meanwhile.
func (p *pool) close(force bool, done func()) {
	p.mu.Lock()
	if st := p.state.Load(); st >= poolStopped {
		p.mu.Unlock()
		if done != nil {
			done()
		}
		return
	}
	if done != nil {
		p.closeDone = append(p.closeDone, done)
	}
	var failed []*msgStub
	if force {
		p.state.Store(poolAborting)
		failed = p.queue
		p.queue = nil
		p.queuedN.Store(0)
		for _, st := range failed {
			st.queued = false
		}
		if p.retry != nil {
			p.retry.Stop()
			p.retry = nil
		}
	} else if p.state.Load() == poolOpen {
		p.state.Store(poolClosing)
	}
	p.stats.Closing = true
	conns := make([]*conn, len(p.conns))
	for i, pc := range p.conns {
		conns[i] = pc.c
	}
	fin := p.finishLocked()
	p.mu.Unlock()
	for _, st := range failed {
		st.fail(ErrConnection, ErrPoolClosed)
	}
	for _, c := range conns {
		if force {
			c.rc.Abort(ErrPoolClosed)
		} else {
			c.rc.Wake() // each checks whether it is done (closeIdle)
		}
	}
	p.finished(fin)
}

// finishLocked ends a closing pool with no connection left and nothing to
// send; it returns the callbacks to run, after unlocking, with finished.
func (p *pool) finishLocked() []func() {
	st := p.state.Load()
	if st != poolClosing && st != poolAborting {
		return nil
	}
	if len(p.conns) > 0 || p.pending > 0 || (st == poolClosing && len(p.queue) > 0) {
		return nil
	}
	p.state.Store(poolClosed)
	if p.retry != nil {
		p.retry.Stop()
		p.retry = nil
	}
	p.stopRefreshLocked()
	done := p.closeDone
	p.closeDone = nil
	if done == nil {
		done = []func(){}
	}
	return done
}

func (p *pool) finished(done []func()) {
	if done == nil {
		return
	}
	p.svc.removePool(p)
	p.event(PoolClosed, nil, nil)
	for _, f := range done {
		f()
	}
}

// stop fails every queued message and stops reconnecting (Service.Stop).
func (p *pool) stop() {
	p.mu.Lock()
	p.state.Store(poolStopped)
	if p.retry != nil {
		p.retry.Stop()
		p.retry = nil
	}
	p.stopRefreshLocked()
	q := p.queue
	p.queue = nil
	p.queuedN.Store(0)
	for _, st := range q {
		st.queued = false // guarded by p.mu: pool.cancel reads it
	}
	done := p.closeDone
	p.closeDone = nil
	p.mu.Unlock()
	for _, st := range q {
		st.fail(ErrConnection, ErrServiceStopped)
	}
	for _, f := range done {
		f()
	}
}
