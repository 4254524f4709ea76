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

// Pool states.
const (
	poolOpen     int32 = iota
	poolClosing        // ClosePool: queued and in-flight messages finish first
	poolAborting       // AbortPool: everything fails now
	poolStopped        // the service stopped
	poolClosed         // finished; removed from the service
)

// pool is the connection pool of one destination name. Messages sent by
// name wait in its queue until one of its connections pulls them.
//
// Scaling: a new connection is dialed, one at a time, while fewer than
// MaxActiveConnections exist and fewer than MaxPendingConnections are being
// set up, when the queue holds more messages than there are idle
// connections (or fewer connections exist than the pool's persistent
// minimum). A name that resolves to several addresses is tried one address
// per attempt; the others are kept for the next attempts. After a failed
// attempt with no address left, the pool retries with capped exponential
// backoff with jitter while messages wait; after losing a connection that
// had been active it reconnects at once.
//
// The main connection is the oldest active one: only it takes synchronous
// messages, so they leave in send order.
type pool struct {
	svc  *Service
	name string

	queuedN atomic.Int32 // len(queue), read without the lock by pullers
	state   atomic.Int32 // pool* state; written under mu

	mu        sync.Mutex
	queue     []*msgStub // FIFO; resent messages go back to the front
	conns     []*conn    // open connections, oldest first
	ready     []bool     // parallel to conns: active (not passive)
	idle      []bool     // parallel to conns: drained the queue with room left
	pending   int        // connections resolving or dialing
	seq       uint64     // last message sequence number
	addrs     []string   // resolved addresses not yet tried
	failures  int        // consecutive failed attempts
	retry     *time.Timer
	minConns  int      // persistent connections to keep (CreatePool)
	closeDone []func() // ClosePool/AbortPool callbacks
	stats     PoolStats
}

// PoolOptions configures a pool created ahead of sending (CreatePool).
type PoolOptions struct {
	// MinConnections is how many connections the pool keeps open even with
	// nothing to send (reconnecting after failures). Zero means 1; it is
	// capped at MaxActiveConnections.
	MinConnections int
}

// PoolStats is a snapshot of one pool.
type PoolStats struct {
	Name         string
	Queued       int    // messages waiting for a connection
	Active       int    // open, active connections
	Passive      int    // open connections not yet activated
	Pending      int    // connections being set up
	Idle         int    // active connections with room and nothing to take
	Dials        uint64 // connection attempts
	DialFailures uint64 // failed attempts
	Connects     uint64 // connections opened
	Disconnects  uint64 // connections closed
	Closing      bool   // ClosePool or AbortPool called
}

// PoolEventKind says what happened to a pool.
type PoolEventKind int

// Pool events.
const (
	// PoolConnectionStart: a connection opened (Conn is set).
	PoolConnectionStart PoolEventKind = iota + 1
	// PoolConnectionActivate: a connection became active (at once unless
	// Config.StartPassive).
	PoolConnectionActivate
	// PoolConnectFailed: a connection attempt failed (Err is set).
	PoolConnectFailed
	// PoolConnectionStop: a connection closed (Conn and Err are set).
	PoolConnectionStop
	// PoolDisconnected: the pool's last connection closed.
	PoolDisconnected
	// PoolClosed: ClosePool or AbortPool finished.
	PoolClosed
)

var poolEventNames = [...]string{"", "ConnectionStart", "ConnectionActivate", "ConnectFailed", "ConnectionStop", "Disconnected", "Closed"}

// String names the event kind.
func (k PoolEventKind) String() string {
	if int(k) < len(poolEventNames) && k > 0 {
		return poolEventNames[k]
	}
	return fmt.Sprintf("PoolEventKind(%d)", int(k))
}

// PoolEvent reports a pool's life to Config.PoolEvent.
type PoolEvent struct {
	Kind PoolEventKind
	Pool string
	Conn Conn  // for connection events
	Err  error // for failures and stops
}

func newPool(svc *Service, name string) *pool {
	return &pool{svc: svc, name: name, stats: PoolStats{Name: name}}
}

func (p *pool) event(kind PoolEventKind, c *conn, err error) {
	if h := p.svc.cfg.PoolEvent; h != nil {
		h(PoolEvent{Kind: kind, Pool: p.name, Conn: Conn{c}, Err: err})
	}
}

// send queues st and wakes a connection or dials one.
func (p *pool) send(st *msgStub) error {
	p.mu.Lock()
	switch p.state.Load() {
	case poolOpen:
	case poolStopped:
		p.mu.Unlock()
		return ErrServiceStopped
	default:
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
		if i := p.mainLocked(); i >= 0 {
			wake = p.conns[i]
			p.idle[i] = false
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

// mainLocked returns the index of the main connection, -1 if none.
func (p *pool) mainLocked() int {
	for i := range p.conns {
		if p.ready[i] {
			return i
		}
	}
	return -1
}

func (p *pool) takeIdleLocked() *conn {
	for i, c := range p.conns {
		if p.idle[i] && p.ready[i] {
			p.idle[i] = false
			return c
		}
	}
	return nil
}

func (p *pool) idleCountLocked() int {
	n := 0
	for i, b := range p.idle {
		if b && p.ready[i] {
			n++
		}
	}
	return n
}

// pull moves messages from the queue into c's writer (loop of c), oldest
// first, while the writer accepts them. Synchronous messages go only to the
// main connection; other connections pass over them.
func (p *pool) pull(c *conn) {
	if p.queuedN.Load() == 0 && p.isIdle(c) {
		return
	}
	p.mu.Lock()
	main := false
	if i := p.mainLocked(); i >= 0 {
		main = p.conns[i] == c
	}
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
	st := p.state.Load()
	if st != poolOpen && st != poolClosing {
		return
	}
	if p.retry != nil {
		return
	}
	if len(p.conns)+p.pending >= cfg.MaxActiveConnections || p.pending >= cfg.MaxPendingConnections {
		return
	}
	need := len(p.queue) > 0 && len(p.queue) > p.idleCountLocked()
	if st == poolOpen && len(p.conns)+p.pending < p.minConns {
		need = true
	}
	if !need {
		return
	}
	p.pending++
	p.stats.Dials++
	p.svc.dialWG.Add(1)
	go p.dial()
}

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
	if st := p.state.Load(); st == poolAborting || st == poolStopped || st == poolClosed {
		p.mu.Unlock()
		c.rc.Abort(ErrPoolClosed)
		return
	}
	p.conns = append(p.conns, c)
	p.ready = append(p.ready, !c.passive)
	p.idle = append(p.idle, false)
	p.stats.Connects++
	// Grow one connection at a time while the backlog exceeds idle
	// connections: the queue is still full here, before c pulls.
	p.maybeDialLocked()
	p.mu.Unlock()
	p.event(PoolConnectionStart, c, nil)
	if !c.passive {
		p.event(PoolConnectionActivate, c, nil)
	}
}

// activated marks a passive connection active (its loop).
func (p *pool) activated(c *conn) {
	p.mu.Lock()
	if i := p.indexLocked(c); i >= 0 {
		p.ready[i] = true
	}
	p.maybeDialLocked()
	p.mu.Unlock()
	p.event(PoolConnectionActivate, c, nil)
}

// dialFailed accounts a failed attempt: the next cached address is tried at
// once; with none left, one-shot messages fail and the pool retries after a
// backoff while messages wait.
func (p *pool) dialFailed(err error) {
	p.mu.Lock()
	p.pending--
	p.failures++
	p.stats.DialFailures++
	var failed []*msgStub
	if len(p.addrs) > 0 && p.state.Load() <= poolClosing {
		p.maybeDialLocked()
	}
	if len(p.conns) == 0 && p.pending == 0 {
		failed = p.takeOneShotLocked()
	}
	p.scheduleRetryLocked()
	done := p.finishLocked()
	p.mu.Unlock()
	p.svc.cfg.Logger.Debug("ipc: connect failed", "pool", p.name, "err", err)
	p.event(PoolConnectFailed, nil, err)
	for _, st := range failed {
		st.fail(ErrConnection, err)
	}
	p.finished(done)
}

func (p *pool) takeOneShotLocked() []*msgStub {
	var out []*msgStub
	k := 0
	for _, st := range p.queue {
		if st.flags&OneShot != 0 {
			st.queued = false
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
// messages go to the front of the queue in their send order, the others
// fail; then the pool reconnects if it needs to.
func (p *pool) connClosed(c *conn, held []*msgStub, cause error) {
	var failed, resend []*msgStub
	slices.SortFunc(held, func(a, b *msgStub) int { return cmp.Compare(a.seq, b.seq) })
	var canceled []*msgStub
	for _, st := range held {
		if st.cancelAsked.Load() {
			canceled = append(canceled, st)
			continue
		}
		if st.resendable() {
			st.started = false
			resend = append(resend, st)
		} else {
			failed = append(failed, st)
		}
	}
	p.mu.Lock()
	state := p.state.Load()
	// A connection that opened while the pool was aborting was never
	// registered (and had no start event): no stop event either.
	registered := false
	if i := p.indexLocked(c); i >= 0 {
		p.conns = slices.Delete(p.conns, i, i+1)
		p.ready = slices.Delete(p.ready, i, i+1)
		p.idle = slices.Delete(p.idle, i, i+1)
		p.stats.Disconnects++
		registered = true
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
	if c.active {
		p.failures = 0
	}
	if len(p.conns) == 0 && state == poolOpen {
		// The pool lost its last connection: one-shot messages still
		// queued fail now (SolidFrame's "clean one-shot" pass).
		failed = append(failed, p.takeOneShotLocked()...)
	}
	p.maybeDialLocked()
	p.scheduleRetryLocked()
	down := len(p.conns) == 0
	done := p.finishLocked()
	p.mu.Unlock()
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
	conns := slices.Clone(p.conns)
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
	q := p.queue
	p.queue = nil
	p.queuedN.Store(0)
	done := p.closeDone
	p.closeDone = nil
	p.mu.Unlock()
	for _, st := range q {
		st.queued = false
		st.fail(ErrConnection, ErrServiceStopped)
	}
	for _, f := range done {
		f()
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
			p.queue = slices.Delete(p.queue, i, i+1)
			p.queuedN.Store(int32(len(p.queue)))
			st.queued = false
			return true, nil
		}
	}
	return false, nil
}

// snapshot returns the pool's statistics.
func (p *pool) snapshot() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Queued, s.Pending = len(p.queue), p.pending
	for i := range p.conns {
		if p.ready[i] {
			s.Active++
		} else {
			s.Passive++
		}
	}
	s.Idle = p.idleCountLocked()
	return s
}
