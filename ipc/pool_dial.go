package ipc

// Dialing: when the pool opens a connection, resolution and address
// rotation, failed attempts and the reconnect backoff.

import (
	"context"
	"math/rand/v2"
	"time"
)

// maybeDialLocked starts one connection attempt if the pool needs one.
func (p *pool) maybeDialLocked() {
	if p.reserveDialLocked() {
		go p.dial()
	}
}

// reserveDialLocked counts one connection attempt as pending if the pool
// needs one, and reports whether it did: the caller then starts it
// (go p.dial()). A caller that reports an event after unlocking starts the
// attempt after that event (dialFailed, opened), so that the attempt's own
// events (its connection opening) never reach Config.PoolEvent before the
// event that led to it.
func (p *pool) reserveDialLocked() bool {
	cfg := &p.svc.cfg
	st := p.state.Load()
	if st != poolOpen && st != poolClosing {
		return false
	}
	if p.retry != nil {
		return false
	}
	if p.liveLocked()+p.pending >= cfg.MaxActiveConnections || p.pending >= cfg.MaxPendingConnections {
		return false
	}
	if !p.needLocked() {
		return false
	}
	p.pending++
	p.stats.Dials++
	p.svc.dialWG.Add(1)
	return true
}

// needLocked reports whether the pool wants one more connection: more
// messages wait than there are idle connections, or an open pool has fewer
// connections than its persistent minimum.
func (p *pool) needLocked() bool {
	if len(p.queue) > 0 && len(p.queue) > p.idleCountLocked() {
		return true
	}
	return p.state.Load() == poolOpen && p.liveLocked()+p.pending < p.minConns
}

func (p *pool) dial() {
	defer p.svc.dialWG.Done()
	ctx, cancel := context.WithTimeout(p.svc.ctx, p.svc.cfg.DialTimeout)
	defer cancel()
	// Through a proxy that resolves, the name itself is the address (and
	// the pool never resolves it: no address of its own to retire).
	addr, err := p.name, error(nil)
	local := p.proxy == nil || p.proxy.ResolveLocally
	if local {
		addr, err = p.nextAddr(ctx) // resolver_pool.go
	}
	if err == nil {
		c := newConn(p.svc, p)
		if local {
			c.addr = addr
		}
		err = p.svc.dial(ctx, p.name, addr, p.proxy, c)
	}
	if err != nil {
		p.dialFailed(err)
	}
}

// dialFailed accounts a failed attempt: the next cached address is tried at
// once; with none left, one-shot messages fail and the pool retries after a
// backoff while messages wait.
func (p *pool) dialFailed(err error) {
	p.mu.Lock()
	p.pending--
	p.failures++
	p.stats.DialFailures++
	p.stale = true // resolve again before a later round (resolver_pool.go)
	var failed []*msgStub
	next := false // the next cached address is tried, after the event
	if len(p.addrs) > 0 && p.state.Load() <= poolClosing {
		next = p.reserveDialLocked()
	}
	if len(p.conns) == 0 && p.pending == 0 {
		failed = p.takeOneShotLocked()
	}
	p.scheduleRetryLocked()
	done := p.finishLocked()
	p.mu.Unlock()
	p.event(PoolConnectFailed, nil, err)
	if next {
		go p.dial()
	}
	for _, st := range failed {
		st.fail(ErrConnection, err)
	}
	p.finished(done)
}

// scheduleRetryLocked arms the backoff timer when the pool needs a
// connection and none is up or coming.
func (p *pool) scheduleRetryLocked() {
	st := p.state.Load()
	if st != poolOpen && st != poolClosing {
		return
	}
	if p.retry != nil || len(p.conns) > 0 || p.pending > 0 {
		return
	}
	if len(p.queue) == 0 && (st != poolOpen || p.minConns == 0) {
		return
	}
	p.armRetryLocked()
}

// armRetryLocked arms the backoff timer: until it fires, maybeDialLocked
// dials nothing.
func (p *pool) armRetryLocked() {
	d := p.backoffLocked()
	p.retry = p.svc.cfg.Clock.AfterFunc(d, func() {
		p.mu.Lock()
		p.retry = nil
		p.maybeDialLocked()
		p.mu.Unlock()
	})
}

// backoffLocked is min(ReconnectMax, ReconnectMin·2^(failures-1)), with
// "equal jitter": a uniform pick in [d/2, d].
func (p *pool) backoffLocked() time.Duration {
	cfg := &p.svc.cfg
	d := cfg.ReconnectMin
	for i := 1; i < p.failures && d < cfg.ReconnectMax; i++ {
		d *= 2
	}
	d = min(d, cfg.ReconnectMax)
	if half := int64(d / 2); half > 0 {
		d = time.Duration(half + rand.Int64N(half+1))
	}
	return d
}
