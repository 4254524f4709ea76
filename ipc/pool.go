package ipc

// The pool of one destination name and its records of connections.

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipcframe/ipcframe/internal/clock"
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
// per attempt; the others are kept for the next attempts, and the name is
// resolved again periodically and after failures (resolver_pool.go).
// After a failed attempt with no address left, the pool retries with
// capped exponential backoff with jitter while messages wait. Losing a connection reconnects
// at once only if the connection was healthy (conn.healthy); otherwise the
// loss counts as a failed attempt and the backoff applies, so a peer that
// accepts and then closes is not redialed in a loop.
//
// Synchronous messages go to one connection only, the pool's synchronous
// connection (main), so they leave in send order. It is chosen, when a
// synchronous message needs it, as the oldest active connection, and keeps
// the role until it closes: activating an older passive connection, or
// opening more connections, never moves it (a retiring connection hands
// it over only if it holds no synchronous message). When it closes, the
// messages it held go back to the front of the queue, under the lock that
// clears the role, so its successor takes them first.
type pool struct {
	svc   *Service
	name  string
	proxy *SOCKS5 // nil: direct (socks5.go); immutable

	traffic trafficCounters // stats.go: its connections' traffic

	queuedN atomic.Int32 // len(queue), read without the lock by pullers
	state   atomic.Int32 // pool* state; written under mu

	mu        sync.Mutex
	queue     []*msgStub // FIFO; resent messages go back to the front
	conns     []poolConn // open connections, oldest first
	main      *conn      // the synchronous connection; nil until needed
	pending   int        // connections resolving or dialing
	seq       uint64     // last message sequence number
	failures  int        // consecutive failed attempts
	retry     clock.Timer
	minConns  int      // persistent connections to keep (CreatePool)
	closeDone []func() // ClosePool/AbortPool callbacks
	stats     PoolStats

	// Name resolution (resolver_pool.go), guarded by mu.
	static       bool          // immutable: the name cannot resolve differently
	resolved     []string      // the last good answer, canonical "ip:port"
	addrs        []string      // addresses of resolved not yet tried this round; next last
	resolvedAt   time.Time     // when resolved was answered (Config.Clock)
	lastResolve  time.Time     // when the last resolution started
	stale        bool          // a connection or attempt failed since the last answer
	resolving    chan struct{} // non-nil while a resolution runs; closed when it ends
	resolveErr   error         // the last resolution's error
	refresh      clock.Timer   // the periodic resolution
	refreshGen   uint64        // bumped when refresh is stopped or re-armed
	refreshFails int           // periodic resolutions failed in a row
}

// poolConn is the pool's record of one of its open connections (guarded by
// the pool's mu).
type poolConn struct {
	c       *conn
	ready   bool // active: takes messages from the queue
	idle    bool // pulled the queue with room left and found nothing to take
	retired bool // closes once idle (conn.retire); not counted in the limits
}

func newPool(svc *Service, name string, proxy *SOCKS5) *pool {
	return &pool{svc: svc, name: name, proxy: proxy, stats: PoolStats{Name: name}, static: isStaticName(svc.cfg.Resolver, name)}
}

func (p *pool) event(kind PoolEventKind, c *conn, err error) {
	p.logPoolEvent(kind, c, err)
	if h := p.svc.cfg.PoolEvent; h != nil {
		h(PoolEvent{Kind: kind, Pool: p.name, Conn: Conn{c}, Err: err})
	}
}

func (p *pool) indexLocked(c *conn) int {
	for i, pc := range p.conns {
		if pc.c == c {
			return i
		}
	}
	return -1
}

func (p *pool) isIdle(c *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.indexLocked(c)
	return i >= 0 && p.conns[i].idle
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
	p.goneOnOpenLocked(c)
	// Grow one connection at a time while the backlog exceeds idle
	// connections: the queue is still full here, before c pulls. The
	// attempt starts after c's events (reserveDialLocked).
	next := p.reserveDialLocked()
	p.mu.Unlock()
	p.event(PoolConnectionStart, c, nil)
	if !c.passive {
		p.event(PoolConnectionActivate, c, nil)
	}
	if next {
		go p.dial()
	}
}

// activated marks a passive connection active (its loop). It does not
// take the synchronous role from the connection that has it.
func (p *pool) activated(c *conn) {
	p.mu.Lock()
	// A connection retired while passive (its address left the answer)
	// stays out of the rotation.
	if i := p.indexLocked(c); i >= 0 && !p.conns[i].retired {
		p.conns[i].ready = true
	}
	p.maybeDialLocked()
	p.mu.Unlock()
	p.event(PoolConnectionActivate, c, nil)
}

// retired takes a retiring connection out of the pool's rotation (its
// loop): it takes no more messages and a replacement may be dialed. If it
// has the synchronous role, it hands it over when it holds no synchronous
// message (holdsSync false), and otherwise keeps it until it closes, so
// that synchronous messages stay in order.
func (p *pool) retired(c *conn, holdsSync bool) {
	p.mu.Lock()
	if i := p.indexLocked(c); i >= 0 {
		p.conns[i].ready, p.conns[i].idle, p.conns[i].retired = false, false, true
	}
	if p.main == c && !holdsSync {
		p.main = nil
	}
	p.maybeDialLocked()
	p.mu.Unlock()
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
	s.Addresses = slices.Clone(p.resolved)
	return s
}
