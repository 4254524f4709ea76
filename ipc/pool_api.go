package ipc

// The pool's public face: options, statistics, events, and the Service
// methods that create, close and inspect pools.

import (
	"fmt"
)

// PoolOptions configures a pool created ahead of sending (CreatePool).
type PoolOptions struct {
	// MinConnections is how many connections the pool keeps open even with
	// nothing to send (reconnecting after failures). Zero means 1; it is
	// capped at MaxActiveConnections.
	MinConnections int
	// Proxy, if set, overrides Config.Proxy for this pool: its connections
	// go through this SOCKS5 proxy. Nil keeps the service's proxy, if any.
	// The pool uses a copy.
	Proxy *SOCKS5
	// Direct connects the pool without a proxy even when Config.Proxy is
	// set. It cannot be combined with Proxy.
	Direct bool
}

// proxy returns the proxy of a pool created with these options (nil o:
// created by a send) when the service's is def.
func (o *PoolOptions) proxy(def *SOCKS5) *SOCKS5 {
	switch {
	case o == nil:
		return def
	case o.Direct:
		return nil
	case o.Proxy != nil:
		p := *o.Proxy
		return &p
	}
	return def
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
	// Addresses is the pool's last good resolver answer ("ip:port", in
	// canonical form); nil before the first.
	Addresses []string
	// Resolver counts the pool's name resolutions.
	Resolver ResolverCounts
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
	// PoolResolveFailed: resolving the pool's name failed (Err matches
	// ErrResolve); the pool kept its addresses and connections.
	PoolResolveFailed
	// PoolAddressesChanged: the pool's name resolved to different
	// addresses (Addrs is the new set); connections to the others retire.
	PoolAddressesChanged
)

var poolEventNames = [...]string{"", "ConnectionStart", "ConnectionActivate", "ConnectFailed", "ConnectionStop", "Disconnected", "Closed",
	"ResolveFailed", "AddressesChanged"}

// String names the event kind.
func (k PoolEventKind) String() string {
	if int(k) < len(poolEventNames) && k > 0 {
		return poolEventNames[k]
	}
	return fmt.Sprintf("PoolEventKind(%d)", int(k))
}

// PoolEvent reports a pool's life to Config.PoolEvent.
type PoolEvent struct {
	Kind  PoolEventKind
	Pool  string
	Conn  Conn     // for connection events
	Err   error    // for failures and stops
	Addrs []string // PoolAddressesChanged: the new addresses
}

// CreatePool creates the pool of name ahead of sending and keeps
// opts.MinConnections connections to it open (reconnecting after
// failures) until the pool is closed. It fails if the pool exists already.
func (s *Service) CreatePool(name string, opts PoolOptions) error {
	if opts.Direct && opts.Proxy != nil {
		return fmt.Errorf("%w: PoolOptions: Direct with a Proxy", ErrInvalidConfig)
	}
	if err := opts.Proxy.validate(); err != nil {
		return fmt.Errorf("%w: PoolOptions.Proxy: %w", ErrInvalidConfig, err)
	}
	p, err := s.poolFor(name, &opts)
	if err != nil {
		return err
	}
	n := opts.MinConnections
	if n <= 0 {
		n = 1
	}
	p.mu.Lock()
	p.minConns = min(n, s.cfg.MaxActiveConnections)
	p.maybeDialLocked()
	p.mu.Unlock()
	return nil
}

// ClosePool closes the pool of name gracefully: sends to it fail with
// ErrPoolClosing from now on, the messages already queued or in flight
// finish (reconnecting if need be), then its connections close and done,
// if not nil, is called. The name is free again afterwards.
func (s *Service) ClosePool(name string, done func()) error {
	p := s.lookupPool(name)
	if p == nil {
		return fmt.Errorf("%w: no pool %q", ErrUnknownPool, name)
	}
	p.close(false, done)
	return nil
}

// AbortPool closes the pool of name at once: every queued or in-flight
// message fails with ErrConnection (caused by ErrPoolClosed), its
// connections close, then done, if not nil, is called.
func (s *Service) AbortPool(name string, done func()) error {
	p := s.lookupPool(name)
	if p == nil {
		return fmt.Errorf("%w: no pool %q", ErrUnknownPool, name)
	}
	p.close(true, done)
	return nil
}

// PoolStats returns a snapshot of the pool of name.
func (s *Service) PoolStats(name string) (PoolStats, bool) {
	p := s.lookupPool(name)
	if p == nil {
		return PoolStats{}, false
	}
	return p.snapshot(), true
}
