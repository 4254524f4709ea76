package ipc

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// pool is the connection pool of one destination name. Messages sent by
// name wait in its queue until one of its connections pulls them.
//
// Scaling: a new connection is dialed while fewer than MaxActiveConnections
// exist and fewer than MaxPendingConnections are being set up, when the
// queue holds more messages than there are idle connections. After a failed
// attempt the pool retries with capped exponential backoff with jitter while
// messages wait; after losing a connection that had been active it
// reconnects at once.
type pool struct {
	svc  *Service
	name string

	queuedN atomic.Int32 // len(queue), read without the lock by pullers

	mu       sync.Mutex
	queue    []*msgStub // FIFO; resent messages go back to the front
	conns    []*conn    // open connections
	idle     []bool     // parallel to conns: drained the queue with room left
	pending  int        // connections resolving or dialing
	seq      uint64     // last message sequence number
	addrs    []string   // resolved addresses not yet tried
	failures int        // consecutive failed attempts
	retry    *time.Timer
	stopped  bool
}

func newPool(svc *Service, name string) *pool {
	return &pool{svc: svc, name: name}
}

// send queues st and wakes a connection or dials one.
func (p *pool) send(st *msgStub) error {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return ErrPoolClosing
	}
	if len(p.queue) >= p.svc.cfg.MaxQueuedMessages {
		p.mu.Unlock()
		return ErrPoolFull
	}
	p.seq++
	st.seq, st.queued = p.seq, true
	p.queue = append(p.queue, st)
	p.queuedN.Store(int32(len(p.queue)))
	var wake *conn
	if st.flags&Synchronous != 0 {
		if len(p.conns) > 0 {
			wake = p.conns[0]
			p.idle[0] = false
		}
	} else {
		wake = p.takeIdleLocked()
	}
	if wake == nil {
		p.maybeDialLocked()
	}
	p.mu.Unlock()
	// A connection whose loop is running its handlers (this send may come
	// from one of them) pulls the queue when they return: no wake-up needed.
	if wake != nil && !wake.dispatching.Load() {
		wake.rc.Wake()
	}
	return nil
}

func (p *pool) takeIdleLocked() *conn {
	for i, c := range p.conns {
		if p.idle[i] {
			p.idle[i] = false
			return c
		}
	}
	return nil
}

func (p *pool) idleCountLocked() int {
	n := 0
	for _, b := range p.idle {
		if b {
			n++
		}
	}
	return n
}

// pull moves messages from the queue into c's writer (loop of c), oldest
// first, while the writer accepts them. Synchronous messages go only to the
// pool's main connection (the oldest open one), so that they leave in send
// order; other connections pass over them.
func (p *pool) pull(c *conn) {
	if p.queuedN.Load() == 0 && p.isIdle(c) {
		return
	}
	p.mu.Lock()
	main := len(p.conns) > 0 && p.conns[0] == c
	k, full, left := 0, false, false
	for _, st := range p.queue {
		switch {
		case full || (st.flags&Synchronous != 0 && !main):
			left = left || st.flags&Synchronous == 0 || main
			p.queue[k] = st
			k++
		case c.w.enqueue(st):
			st.queued, st.owner = false, c
		default:
			full, left = true, true
			p.queue[k] = st
			k++
		}
	}
	clear(p.queue[k:])
	p.queue = p.queue[:k]
	p.queuedN.Store(int32(k))
	if i := p.indexLocked(c); i >= 0 {
		p.idle[i] = !left
	}
	if left {
		p.maybeDialLocked()
	}
	p.mu.Unlock()
}

func (p *pool) isIdle(c *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.indexLocked(c)
	return i >= 0 && p.idle[i]
}

func (p *pool) indexLocked(c *conn) int {
	for i, x := range p.conns {
		if x == c {
			return i
		}
	}
	return -1
}

// maybeDialLocked starts one connection attempt if the pool needs one.
func (p *pool) maybeDialLocked() {
	cfg := &p.svc.cfg
	if p.stopped || p.retry != nil || len(p.queue) == 0 {
		return
	}
	if len(p.conns)+p.pending >= cfg.MaxActiveConnections || p.pending >= cfg.MaxPendingConnections {
		return
	}
	if len(p.queue) <= p.idleCountLocked() {
		return
	}
	p.pending++
	p.svc.dialWG.Add(1)
	go p.dial()
}

// dial resolves (when no address is cached) and connects, off the loops.
func (p *pool) dial() {
	defer p.svc.dialWG.Done()
	ctx, cancel := context.WithTimeout(p.svc.ctx, p.svc.cfg.DialTimeout)
	defer cancel()
	addr, err := p.nextAddr(ctx)
	if err == nil {
		_, err = p.svc.r.Dial(ctx, addr, newConn(p.svc, p))
	}
	if err != nil {
		p.dialFailed(err)
	}
}

func (p *pool) nextAddr(ctx context.Context) (string, error) {
	p.mu.Lock()
	if n := len(p.addrs); n > 0 {
		a := p.addrs[n-1]
		p.addrs = p.addrs[:n-1]
		p.mu.Unlock()
		return a, nil
	}
	p.mu.Unlock()
	addrs, err := p.svc.cfg.Resolver.Resolve(ctx, p.name)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrResolve, p.name, err)
	}
	if len(addrs) == 0 {
		return "", fmt.Errorf("%w: %s: no address", ErrResolve, p.name)
	}
	p.mu.Lock()
	// Keep the rest, first address tried first.
	p.addrs = p.addrs[:0]
	for i := len(addrs) - 1; i >= 1; i-- {
		p.addrs = append(p.addrs, addrs[i])
	}
	p.mu.Unlock()
	return addrs[0], nil
}

// opened registers a connection that reached OnOpen (its loop).
func (p *pool) opened(c *conn) {
	p.mu.Lock()
	p.pending--
	p.failures = 0
	if p.stopped {
		p.mu.Unlock()
		c.rc.Abort(ErrServiceStopped)
		return
	}
	p.conns = append(p.conns, c)
	p.idle = append(p.idle, false)
	// Grow one connection at a time while the backlog exceeds idle
	// connections: the queue is still full here, before c pulls.
	p.maybeDialLocked()
	p.mu.Unlock()
}

// dialFailed accounts a failed attempt: one-shot messages fail, the others
// wait for the retry.
func (p *pool) dialFailed(err error) {
	p.mu.Lock()
	p.pending--
	p.failures++
	var failed []*msgStub
	if len(p.conns) == 0 && p.pending == 0 {
		failed = p.takeOneShotLocked()
	}
	p.scheduleRetryLocked()
	p.mu.Unlock()
	p.svc.cfg.Logger.Debug("ipc: connect failed", "pool", p.name, "err", err)
	for _, st := range failed {
		st.fail(ErrConnection, err)
	}
}

func (p *pool) takeOneShotLocked() []*msgStub {
	var out []*msgStub
	k := 0
	for _, st := range p.queue {
		if st.flags&OneShot != 0 {
			out = append(out, st)
			continue
		}
		p.queue[k] = st
		k++
	}
	clear(p.queue[k:])
	p.queue = p.queue[:k]
	p.queuedN.Store(int32(k))
	return out
}

// scheduleRetryLocked arms the backoff timer when messages wait and no
// connection is up or coming.
func (p *pool) scheduleRetryLocked() {
	if p.stopped || p.retry != nil || len(p.queue) == 0 || len(p.conns) > 0 || p.pending > 0 {
		return
	}
	d := p.backoffLocked()
	p.retry = time.AfterFunc(d, func() {
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

// connClosed takes back what a closed connection held (its loop): resendable
// messages go to the front of the queue in their original order, the others
// fail; then the pool reconnects if messages wait.
func (p *pool) connClosed(c *conn, held []*msgStub, cause error) {
	var failed []*msgStub
	var resend []*msgStub
	slices.SortFunc(held, func(a, b *msgStub) int { return cmp.Compare(a.seq, b.seq) })
	for _, st := range held {
		if st.resendable() {
			st.started = false
			resend = append(resend, st)
		} else {
			failed = append(failed, st)
		}
	}
	p.mu.Lock()
	stopped := p.stopped
	if i := p.indexLocked(c); i >= 0 {
		p.conns = append(p.conns[:i], p.conns[i+1:]...)
		p.idle = append(p.idle[:i], p.idle[i+1:]...)
	}
	if p.stopped {
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
	if c.active && !p.stopped {
		p.failures = 0
	}
	p.maybeDialLocked()
	if len(p.conns) == 0 && p.pending == 0 {
		p.scheduleRetryLocked()
	}
	p.mu.Unlock()
	for _, st := range failed {
		if stopped {
			st.fail(ErrConnection, ErrServiceStopped)
		} else {
			st.fail(ErrConnection, cause)
		}
	}
}

// stop fails every queued message and stops reconnecting.
func (p *pool) stop() {
	p.mu.Lock()
	p.stopped = true
	if p.retry != nil {
		p.retry.Stop()
		p.retry = nil
	}
	q := p.queue
	p.queue = nil
	p.queuedN.Store(0)
	p.mu.Unlock()
	for _, st := range q {
		st.fail(ErrConnection, ErrServiceStopped)
	}
}

// cancel removes st from the queue if it is still there and reports
// whether it did; otherwise it returns the connection that took it.
func (p *pool) cancel(st *msgStub) (removed bool, owner *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !st.queued {
		return false, st.owner
	}
	for i, x := range p.queue {
		if x == st {
			p.queue = append(p.queue[:i], p.queue[i+1:]...)
			p.queuedN.Store(int32(len(p.queue)))
			st.queued = false
			return true, nil
		}
	}
	return false, nil
}
