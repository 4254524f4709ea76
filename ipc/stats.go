package ipc

import (
	"cmp"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/ipcframe/ipcframe/reactor"
)

// Stats is a snapshot of a service's counters (Service.Stats). Counters
// count from the service's creation and only grow; gauges (InFlight, the
// pools' Queued, ...) are current values.
//
// Each counter is read atomically, and the lists are taken under the
// service's lock, but the counters are not frozen together: a message may
// show as sent and not yet as completed. Counting costs one atomic add per
// event and never allocates or locks.
type Stats struct {
	// Traffic over all connections, closed ones included.
	Traffic
	// Completions counts completed sends by outcome.
	Completions Completions
	// InFlight is the number of accepted sends not yet completed.
	InFlight int64
	// Connections counts connections opened and closed.
	Connections ConnectionCounts
	// KeepAlivesSent and KeepAlivesReceived count KeepAlive packets.
	KeepAlivesSent, KeepAlivesReceived uint64
	// Resends counts messages queued again after their connection failed
	// (kinds that allow it, package doc). Cancels counts Cancel calls and
	// ended contexts that reached a message not yet completed.
	Resends, Cancels uint64
	// Resolver counts the name resolutions of all pools, closed ones
	// included.
	Resolver ResolverCounts
	// Pools holds each pool's statistics, sorted by name, and PoolTraffic
	// the traffic of each pool's connections, closed ones included, by
	// pool name.
	Pools       []PoolStats
	PoolTraffic map[string]Traffic
	// Conns holds each open connection's counters, sorted by ID.
	Conns []ConnStats
}

// Traffic counts messages and bytes: messages fully serialized and fully
// received; packet bytes on the socket (headers included).
type Traffic struct {
	MessagesSent, MessagesReceived uint64
	BytesSent, BytesReceived       uint64
}

// trafficCounters are the atomics behind a Traffic, added to on the loop
// of the connection concerned.
type trafficCounters struct {
	msgsSent, msgsRecv   atomic.Uint64
	bytesSent, bytesRecv atomic.Uint64
}

func (t *trafficCounters) sent(bytes int, msgs uint64) {
	t.bytesSent.Add(uint64(bytes))
	if msgs > 0 {
		t.msgsSent.Add(msgs)
	}
}

func (t *trafficCounters) load() Traffic {
	return Traffic{
		MessagesSent:     t.msgsSent.Load(),
		MessagesReceived: t.msgsRecv.Load(),
		BytesSent:        t.bytesSent.Load(),
		BytesReceived:    t.bytesRecv.Load(),
	}
}

// Completions counts completed sends by outcome: OK for success, then by
// the error's kind (errors.Is against the sentinel named).
type Completions struct {
	OK             uint64
	Canceled       uint64 // ErrCanceled
	CanceledByPeer uint64 // ErrCanceledByPeer
	Connection     uint64 // ErrConnection
	Encode         uint64 // ErrEncode
	Other          uint64 // anything else
}

// ConnectionCounts counts connections opened, by side, and closed, by
// cause.
type ConnectionCounts struct {
	Accepted, Dialed uint64 // opened
	// Closed by cause: gracefully by this side (Conn.Close, CloseAfter,
	// pool close, Stop); by the peer (end of stream, reset); by the
	// inactivity or dead-peer timers; on a protocol violation (bad input,
	// keepalive flood); other errors.
	ClosedLocal, ClosedByPeer, ClosedTimeout, ClosedProtocol, ClosedOther uint64
	// FirstPacketTimeouts counts the accepted connections closed for
	// sending no complete packet within Config.FirstPacketTimeout (they
	// are among ClosedTimeout).
	FirstPacketTimeouts uint64
	// Rejected counts the connections accepted beyond
	// Config.MaxAcceptedConnections and closed at once. They never opened:
	// they are not in Accepted.
	Rejected uint64
}

// Open returns the connections open now.
func (c ConnectionCounts) Open() uint64 {
	return c.Accepted + c.Dialed - c.ClosedLocal - c.ClosedByPeer - c.ClosedTimeout - c.ClosedProtocol - c.ClosedOther
}

// ConnStats are one open connection's counters.
type ConnStats struct {
	ID     uint64
	Remote string
	Pool   string // "" for an accepted connection
	// As in Stats, for this connection.
	Traffic
	KeepAlivesSent, KeepAlivesReceived uint64
	// Queued counts connection-directed messages (responses, SendTo) not
	// yet taken by the connection's writer.
	Queued int
}

// connCounters are a connection's counters: written on its loop, read by
// Stats from any goroutine.
type connCounters struct {
	traffic                        trafficCounters
	keepAlivesSent, keepAlivesRecv atomic.Uint64
	finishedSeen                   uint64 // loop-owned: writer.finished already counted
}

// serviceCounters are a service's counters (Service.counters).
type serviceCounters struct {
	traffic                        trafficCounters
	completions                    [completionKinds]atomic.Uint64
	accepted, dialed               atomic.Uint64
	closed                         [closeCauses]atomic.Uint64
	firstPacket                    atomic.Uint64 // of closed[closedTimeout]
	keepAlivesSent, keepAlivesRecv atomic.Uint64
	resends, cancels               atomic.Uint64
	resolver                       resolverCounters // resolver_pool.go

	connsMu sync.Mutex
	conns   map[*conn]struct{} // guarded by connsMu: open connections
}

// Completion outcomes, the indexes of serviceCounters.completions.
const (
	doneOK = iota
	doneCanceled
	doneCanceledByPeer
	doneConnection
	doneEncode
	doneOther
	completionKinds
)

// Close causes, the indexes of serviceCounters.closed.
const (
	closedLocal = iota
	closedByPeer
	closedTimeout
	closedProtocol
	closedOther
	closeCauses
)

// countCompletion counts one completion of a send of s (s may be nil).
func countCompletion(s *Service, err error) {
	if s == nil {
		return
	}
	k := doneOK
	switch {
	case err == nil:
	case errors.Is(err, ErrCanceledByPeer):
		k = doneCanceledByPeer
	case errors.Is(err, ErrCanceled):
		k = doneCanceled
	case errors.Is(err, ErrConnection):
		k = doneConnection
	case errors.Is(err, ErrEncode):
		k = doneEncode
	default:
		k = doneOther
	}
	s.counters.completions[k].Add(1)
}

// countOpen counts a connection that opened and lists it for Stats (loop,
// once its ID and address are set).
func (c *conn) countOpen() {
	sc := &c.svc.counters
	if c.pool != nil {
		sc.dialed.Add(1)
	} else {
		sc.accepted.Add(1)
	}
	sc.connsMu.Lock()
	if sc.conns == nil {
		sc.conns = map[*conn]struct{}{}
	}
	sc.conns[c] = struct{}{}
	sc.connsMu.Unlock()
}

// countClose counts a connection that closed with cause, if it had opened
// (loop), and returns the class it counted it in.
func (c *conn) countClose(cause error) (k int, counted bool) {
	if !c.active {
		return 0, false
	}
	sc := &c.svc.counters
	sc.connsMu.Lock()
	_, listed := sc.conns[c]
	delete(sc.conns, c)
	sc.connsMu.Unlock()
	if !listed {
		return 0, false
	}
	k = closedOther
	switch {
	case errors.Is(cause, ErrFirstPacketTimeout):
		k = closedTimeout
		sc.firstPacket.Add(1)
	case errors.Is(cause, ErrInactivity), errors.Is(cause, ErrDeadPeer):
		k = closedTimeout
	case errors.Is(cause, ErrProtocol):
		k = closedProtocol
	case errors.Is(cause, io.EOF), errors.Is(cause, syscall.ECONNRESET), errors.Is(cause, syscall.EPIPE):
		k = closedByPeer
	case errors.Is(cause, ErrConnectionClosed), errors.Is(cause, ErrServiceStopped), errors.Is(cause, ErrPoolClosed),
		errors.Is(cause, ErrAddressGone),
		errors.Is(cause, reactor.ErrStopped), errors.Is(cause, reactor.ErrClosed):
		k = closedLocal
	}
	c.svc.counters.closed[k].Add(1)
	return k, true
}

// countSent counts n bytes written to the socket and the messages the
// writer finished serializing since the last call, for the connection,
// its pool and its service (loop).
func (c *conn) countSent(n int) {
	d := c.w.finished - c.stats.finishedSeen
	c.stats.finishedSeen = c.w.finished
	c.stats.traffic.sent(n, d)
	c.svc.counters.traffic.sent(n, d)
	if c.pool != nil {
		c.pool.traffic.sent(n, d)
	}
}

// countReceived counts n bytes read from the socket (loop).
func (c *conn) countReceived(n int) {
	c.stats.traffic.bytesRecv.Add(uint64(n))
	c.svc.counters.traffic.bytesRecv.Add(uint64(n))
	if c.pool != nil {
		c.pool.traffic.bytesRecv.Add(uint64(n))
	}
}

// countMessage counts a message received whole (loop).
func (c *conn) countMessage() {
	c.stats.traffic.msgsRecv.Add(1)
	c.svc.counters.traffic.msgsRecv.Add(1)
	if c.pool != nil {
		c.pool.traffic.msgsRecv.Add(1)
	}
}

// countKeepAlive counts a KeepAlive packet sent or received (loop).
func (c *conn) countKeepAlive(sent bool) {
	if sent {
		c.stats.keepAlivesSent.Add(1)
		c.svc.counters.keepAlivesSent.Add(1)
		return
	}
	c.stats.keepAlivesRecv.Add(1)
	c.svc.counters.keepAlivesRecv.Add(1)
}

// snapshot returns the connection's counters (any goroutine).
func (c *conn) snapshot() ConnStats {
	cs := ConnStats{
		ID:                 c.id,
		Remote:             c.remote,
		Traffic:            c.stats.traffic.load(),
		KeepAlivesSent:     c.stats.keepAlivesSent.Load(),
		KeepAlivesReceived: c.stats.keepAlivesRecv.Load(),
		Queued:             int(c.directN.Load()),
	}
	if c.pool != nil {
		cs.Pool = c.pool.name
	}
	return cs
}

// Stats returns a snapshot of the service's counters, its pools and its
// open connections. It takes the service's, its connection list's and each
// pool's lock once; it is meant for monitoring (a scrape every few seconds), not for a hot path.
func (s *Service) Stats() Stats {
	sc := &s.counters
	st := Stats{
		Traffic: sc.traffic.load(),
		Completions: Completions{
			OK:             sc.completions[doneOK].Load(),
			Canceled:       sc.completions[doneCanceled].Load(),
			CanceledByPeer: sc.completions[doneCanceledByPeer].Load(),
			Connection:     sc.completions[doneConnection].Load(),
			Encode:         sc.completions[doneEncode].Load(),
			Other:          sc.completions[doneOther].Load(),
		},
		InFlight: s.inflight.Load(),
		Connections: ConnectionCounts{
			Accepted:       sc.accepted.Load(),
			Dialed:         sc.dialed.Load(),
			ClosedLocal:    sc.closed[closedLocal].Load(),
			ClosedByPeer:   sc.closed[closedByPeer].Load(),
			ClosedTimeout:  sc.closed[closedTimeout].Load(),
			ClosedProtocol: sc.closed[closedProtocol].Load(),
			ClosedOther:    sc.closed[closedOther].Load(),

			FirstPacketTimeouts: sc.firstPacket.Load(),
			Rejected:            s.r.Stats().Rejected,
		},
		KeepAlivesSent:     sc.keepAlivesSent.Load(),
		KeepAlivesReceived: sc.keepAlivesRecv.Load(),
		Resends:            sc.resends.Load(),
		Cancels:            sc.cancels.Load(),
		Resolver:           sc.resolver.load(),
	}
	sc.connsMu.Lock()
	for c := range sc.conns {
		st.Conns = append(st.Conns, c.snapshot())
	}
	sc.connsMu.Unlock()
	for _, p := range s.poolList() {
		ps := p.snapshot()
		ps.Name = p.name
		st.Pools = append(st.Pools, ps)
		if st.PoolTraffic == nil {
			st.PoolTraffic = map[string]Traffic{}
		}
		st.PoolTraffic[p.name] = p.traffic.load()
	}
	slices.SortFunc(st.Pools, func(a, b PoolStats) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(st.Conns, func(a, b ConnStats) int { return cmp.Compare(a.ID, b.ID) })
	return st
}

// PublishExpvar publishes the service's Stats under name in the standard
// library's expvar registry (served as JSON at /debug/vars by
// expvar's handler). The snapshot is taken at each read. It fails if name
// is taken: expvar names are process-wide and permanent.
func (s *Service) PublishExpvar(name string) error {
	expvarMu.Lock()
	defer expvarMu.Unlock()
	if expvar.Get(name) != nil {
		return fmt.Errorf("%w: expvar %q is published already", ErrInvalidConfig, name)
	}
	expvar.Publish(name, expvar.Func(func() any { return s.Stats() }))
	return nil
}

// poolList returns the service's pools.
func (s *Service) poolList() []*pool {
	s.mu.Lock()
	defer s.mu.Unlock()
	pools := make([]*pool, 0, len(s.pools))
	for _, p := range s.pools {
		pools = append(pools, p)
	}
	return pools
}

// expvarMu makes PublishExpvar's check and publish one step.
var expvarMu sync.Mutex

// String returns st as JSON, as expvar shows it.
func (st Stats) String() string {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Sprintf("ipc.Stats: %v", err)
	}
	return string(b)
}
