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
// backoff with jitter while messages wait. Losing a connection reconnects
// at once only if the connection was healthy (conn.healthy); otherwise the
// loss counts as a failed attempt and the backoff applies, so a peer that
// accepts and then closes is not redialed in a loop.
//
// Synchronous messages go to one connection only, the pool's synchronous
// connection (main), so they leave in send order. It is chosen, when a
// synchronous message needs it, as the oldest active connection, and keeps
// the role until it closes: activating an older passive connection, or
// opening more connections, never moves it while it still holds
// synchronous messages. When it closes, the messages it held go back to
// the front of the queue, under the lock that clears the role, so its
// successor takes them first.
type pool struct {
	svc  *Service
	name string

	queuedN atomic.Int32 // len(queue), read without the lock by pullers
	state   atomic.Int32 // pool* state; written under mu

	mu        sync.Mutex
	queue     []*msgStub // FIFO; resent messages go back to the front
	conns     []poolConn // open connections, oldest first
	main      *conn      // the synchronous connection; nil until needed
	pending   int        // connections resolving or dialing
	seq       uint64     // last message sequence number
	addrs     []string   // resolved addresses not yet tried
	failures  int        // consecutive failed attempts
	retry     *time.Timer
	minConns  int      // persistent connections to keep (CreatePool)
	closeDone []func() // ClosePool/AbortPool callbacks
	stats     PoolStats
}

// poolConn is the pool's record of one of its open connections (guarded by
// the pool's mu).
type poolConn struct {
	c       *conn
	ready   bool // active: takes messages from the queue
	idle    bool // pulled the queue with room left and found nothing to take
	retired bool // closes once idle (conn.retire); not counted in the limits
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
		if wake = p.mainLocked(); wake != nil {
			p.conns[p.indexLocked(wake)].idle = false
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

// mainLocked returns the synchronous connection, choosing the oldest
// active one if there is none; nil if no connection is active.
func (p *pool) mainLocked() *conn {
	if p.main == nil {
		for _, pc := range p.conns {
			if pc.ready {
				p.main = pc.c
				break
			}
		}
	}
	return p.main
}

func (p *pool) takeIdleLocked() *conn {
	for i := range p.conns {
		if pc := &p.conns[i]; pc.idle && pc.ready {
			pc.idle = false
			return pc.c
		}
	}
	return nil
}

func (p *pool) idleCountLocked() int {
	n := 0
	for _, pc := range p.conns {
		if pc.idle && pc.ready {
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
	main := p.mainLocked() == c
	k, full, left := 0, false, false
	var canceled []*msgStub
	for _, st := range p.queue {
		switch {
		case st.cancelAsked.Load():
			// Never the case today (a queued message is canceled by removing
			// it), kept so that a canceled message can never be sent.
			st.queued = false
			canceled = append(canceled, st)
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
		p.conns[i].idle = !left
	}
	if left {
		p.maybeDialLocked()
	}
	p.mu.Unlock()
	for _, st := range canceled {
		st.fail(ErrCanceled, nil)
	}
}

func (p *pool) isIdle(c *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.indexLocked(c)
	return i >= 0 && p.conns[i].idle
}

func (p *pool) indexLocked(c *conn) int {
	for i, pc := range p.conns {
		if pc.c == c {
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
	if p.liveLocked()+p.pending >= cfg.MaxActiveConnections || p.pending >= cfg.MaxPendingConnections {
		return
	}
	if !p.needLocked() {
		return
	}
	p.pending++
	p.stats.Dials++
	p.svc.dialWG.Add(1)
	go p.dial()
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

// liveLocked counts the open connections that are not retired.
func (p *pool) liveLocked() int {
	n := 0
	for _, pc := range p.conns {
		if !pc.retired {
			n++
		}
	}
	return n
}

// retired takes a retiring connection out of the pool's rotation (its
// loop): it takes no more messages and a replacement may be dialed. It
// keeps the synchronous role, if it has it, until it closes, so that
// synchronous messages stay in order.
func (p *pool) retired(c *conn) {
	p.mu.Lock()
	if i := p.indexLocked(c); i >= 0 {
		p.conns[i].ready, p.conns[i].idle, p.conns[i].retired = false, false, true
	}
	p.maybeDialLocked()
	p.mu.Unlock()
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
	// failures is not reset here: a peer that accepts and closes at once
	// must not be redialed in a loop. connClosed resets it when a healthy
	// connection is lost.
	if st := p.state.Load(); st == poolAborting || st == poolStopped || st == poolClosed {
		p.mu.Unlock()
		c.rc.Abort(ErrPoolClosed)
		return
	}
	p.conns = append(p.conns, poolConn{c: c, ready: !c.passive})
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

// activated marks a passive connection active (its loop). It does not
// take the synchronous role from the connection that has it.
func (p *pool) activated(c *conn) {
	p.mu.Lock()
	if i := p.indexLocked(c); i >= 0 {
		p.conns[i].ready = true
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
	p.armRetryLocked()
}

// armRetryLocked arms the backoff timer: until it fires, maybeDialLocked
// dials nothing.
func (p *pool) armRetryLocked() {
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
		st.fail(ErrCanceled, nil)
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

// cancel removes st from the queue if it is still there and reports
// whether it did; otherwise it marks st canceled (cancelAsked, under p.mu,
// which connClosed reads under p.mu too) and returns the connection that
// took it.
func (p *pool) cancel(st *msgStub) (removed bool, owner *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !st.queued {
		if st.owner != nil && !st.completed.Load() {
			st.cancelAsked.Store(true)
		}
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
	for _, pc := range p.conns {
		if pc.ready || pc.retired {
			s.Active++
		} else {
			s.Passive++
		}
	}
	s.Idle = p.idleCountLocked()
	return s
}
