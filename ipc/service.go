package ipc

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipcframe/ipcframe/reactor"
)

// Service sends and receives messages. One type serves both roles: with
// Config.Listen set it accepts connections; it dials any destination name
// it is asked to send to, through one connection pool per name.
//
// All methods are safe for concurrent use. Completion callbacks and message
// handlers run on the event loop of the connection concerned and must not
// block.
type Service struct {
	cfg Config
	r   *reactor.Reactor

	counters serviceCounters // stats.go; atomics and their own lock

	relay *relayEngine // relay.go; nil unless Config.Relay.Enabled. Immutable.

	ctx    context.Context // canceled by Stop; bounds dials
	cancel context.CancelFunc
	dialWG sync.WaitGroup

	inflight atomic.Int64  // accepted sends not yet completed
	stopping atomic.Bool   // Stop called: sends fail
	drained  chan struct{} // closed when inflight reaches 0 during Stop
	drainMu  sync.Mutex

	mu       sync.Mutex
	pools    map[string]*pool
	accepted map[*conn]struct{}
	started  bool
	stopped  bool
	stopDone chan struct{} // closed when the first Stop returns
}

// NewService validates cfg and returns a service that is not yet running.
func NewService(cfg Config) (*Service, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: c, pools: map[string]*pool{}, accepted: map[*conn]struct{}{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if c.Relay.Enabled {
		s.relay = newRelayEngine(s)
	}
	s.r, err = reactor.New(reactor.Config{
		Loops:       c.Loops,
		DialTimeout: c.DialTimeout,
		BusyPoll:    c.BusyPoll,
		MaxInbound:  2 * (maxPacketPayload + packetHeaderSize),
		Logger:      c.Logger,
		Clock:       c.Clock,
		TLS:         c.reactorTLS(),
		MaxAccepted: c.MaxAcceptedConnections,
		// A short pipe below the writer (writer.go: head-of-line).
		HighWater:          writeHighWater,
		LowWater:           writeLowWater,
		NotSentLowat:       writeNotSentLowat,
		LoopbackRecvBuffer: loopbackRecvBuffer,
		LoopbackCongestion: loopbackCongestion,
	}, handler{s})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Start starts the event loops and, if configured, the listener.
func (s *Service) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.stopped {
		return fmt.Errorf("%w: Start called twice", ErrServiceStopped)
	}
	if err := s.r.Start(s.cfg.Listen); err != nil {
		return err
	}
	s.started = true
	return nil
}

// Addr returns the listener's address (useful with port 0).
func (s *Service) Addr() net.Addr { return s.r.Addr() }

// Stop stops the service gracefully: new sends fail with ErrServiceStopped,
// messages already accepted are given until ctx ends to complete, then every
// connection closes and whatever is left completes with ErrConnection
// (caused by ErrServiceStopped). Stop returns ctx's error if it ended first.
//
// A second Stop waits until the first has returned (or until its own ctx
// ends, returning ctx's error), then returns nil.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		done := s.stopDone
		s.mu.Unlock()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.stopped = true
	s.stopDone = make(chan struct{})
	defer close(s.stopDone)
	started := s.started
	s.mu.Unlock()

	s.drainMu.Lock()
	s.drained = make(chan struct{})
	s.stopping.Store(true)
	if s.inflight.Load() == 0 {
		close(s.drained)
		s.drained = nil
	}
	ch := s.drained
	s.drainMu.Unlock()
	var err error
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	for _, p := range s.poolList() {
		p.stop()
	}
	s.cancel()
	s.dialWG.Wait()
	if started {
		// Close the connections gracefully within ctx; when ctx has ended
		// already, give them a short grace before the hard stop.
		rctx := ctx
		if ctx.Err() != nil {
			var cancel context.CancelFunc
			rctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), stopGrace)
			defer cancel()
		}
		if e := s.r.Stop(rctx); e != nil && err == nil {
			err = e
		}
	}
	return err
}

func (s *Service) messageQueued() { s.inflight.Add(1) }

func (s *Service) messageDone() {
	if s.inflight.Add(-1) == 0 && s.stopping.Load() {
		s.drainMu.Lock()
		if s.drained != nil && s.inflight.Load() == 0 {
			close(s.drained)
			s.drained = nil
		}
		s.drainMu.Unlock()
	}
}

// stopGrace bounds the close of connections when Stop's context has ended.
const stopGrace = time.Second

// newStub checks m and returns a stub for it. New sends fail once Stop has
// begun; responses (flags has Response) are still accepted so that requests
// in flight can be answered while the service drains.
func (s *Service) newStub(m Message, flags Flags) (*msgStub, error) {
	st := stubPool.Get().(*msgStub)
	if err := s.initStub(st, m, flags); err != nil {
		stubPool.Put(st)
		return nil, err
	}
	return st, nil
}

// initStub is newStub with the stub given (a Call's pooled one).
func (s *Service) initStub(st *msgStub, m Message, flags Flags) error {
	if m == nil {
		return ErrNilMessage
	}
	if s.stopping.Load() && flags&Response == 0 {
		return ErrServiceStopped
	}
	ti := s.cfg.Protocol.lookup(m)
	if ti == nil {
		return fmt.Errorf("%w: %T", ErrUnknownType, m)
	}
	st.svc, st.msg, st.ti = s, m, ti
	st.flags, st.state = flags&(userFlags|Response), OnPeer
	retainMsg(m, ti)
	return nil
}

func (s *Service) sendToPool(name string, st *msgStub) error {
	p, err := s.poolFor(name, nil)
	if err == nil && st.url != "" {
		if e := checkRelayPath(st.url, maxRelayPath); e != nil {
			err = fmt.Errorf("%w: %q: %w", ErrBadName, name+"/"+st.url, e)
		}
	}
	if err != nil {
		releaseMsg(st.msg)
		st.recycle()
		return err
	}
	st.pool = p
	s.messageQueued()
	if err := p.send(st); err != nil {
		st.discard()
		return err
	}
	return nil
}

// poolFor returns the pool of name, creating it if needed. With opts
// (CreatePool) it fails if the pool exists already, and creates it with
// opts' proxy: the check and the creation happen under one lock, so no
// send can dial the pool before its options are set.
func (s *Service) poolFor(name string, opts *PoolOptions) (*pool, error) {
	mustCreate := opts != nil
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || !s.started {
		return nil, ErrServiceStopped
	}
	p := s.pools[name]
	if p != nil && mustCreate {
		return nil, fmt.Errorf("%w: pool %q exists", ErrInvalidConfig, name)
	}
	if p == nil {
		if _, _, err := net.SplitHostPort(name); err != nil {
			return nil, fmt.Errorf("%w: %q", ErrBadName, name)
		}
		p = newPool(s, name, opts.proxy(s.cfg.Proxy))
		s.pools[name] = p
	}
	return p, nil
}

// removePool forgets a closed pool, so that the name can be used again.
func (s *Service) removePool(p *pool) {
	s.mu.Lock()
	if s.pools[p.name] == p {
		delete(s.pools, p.name)
	}
	s.mu.Unlock()
}

func (s *Service) lookupPool(name string) *pool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pools[name]
}

func (s *Service) connGone(c *conn) {
	s.mu.Lock()
	delete(s.accepted, c)
	s.mu.Unlock()
}

// handler adapts the Service to reactor.Handler.
type handler struct{ s *Service }

func (h handler) OnOpen(rc *reactor.Conn) {
	var c *conn
	if rc.Dialed() {
		c = rc.Data().(*conn)
	} else {
		c = newConn(h.s, nil)
		rc.SetData(c)
		h.s.mu.Lock()
		h.s.accepted[c] = struct{}{}
		h.s.mu.Unlock()
	}
	c.rc, c.id, c.remote = rc, rc.ID(), rc.RemoteAddr()
	c.ls = loopStateOf(rc.Loop(), &h.s.cfg)
	c.w.codecs, c.r.codecs = &c.ls.codecs, &c.ls.codecs
	c.r.post, c.r.afterRelease = rc.Execute, c.pump // asynchronous sinks (window.go)
	c.w.post, c.w.afterUnpark = rc.Execute, c.pump  // asynchronous sources (asyncsource.go)
	c.r.flush = c.flushWaiting                      // conn.go, pipe.go
	_, overTLS := rc.TLSConnectionState()
	c.r.direct = !overTLS // reading into values (readinto.go)
	c.countOpen()
	c.log.Debug("ipc: connection opened")
	c.active, c.openAt = true, h.s.cfg.Clock.Now()
	c.raw = c.startRaw()
	c.passive = c.pool != nil && (h.s.cfg.StartPassive || c.raw)
	if c.passive || c.raw {
		c.w.helloPending = false // sent on activation (activateOnLoop)
	}
	c.startTimers()
	if h := h.s.cfg.ConnectionStart; h != nil {
		h(c.info())
	}
	if c.pool != nil {
		c.pool.opened(c)
	}
	c.pump()
	if c.pool != nil {
		c.openingKeepAlive()
	}
}

func (h handler) OnData(rc *reactor.Conn, data []byte) int {
	return rc.Data().(*conn).onData(data)
}

// OnReadInto implements reactor.ReadIntoHandler (readinto.go).
func (h handler) OnReadInto(rc *reactor.Conn, n int) {
	rc.Data().(*conn).onReadInto(n)
}

func (h handler) OnWritable(rc *reactor.Conn) { rc.Data().(*conn).pump() }

func (h handler) OnWake(rc *reactor.Conn) { rc.Data().(*conn).pump() }

func (h handler) OnClose(rc *reactor.Conn, err error) {
	if c, ok := rc.Data().(*conn); ok && c != nil {
		c.onClose(err)
	}
}
