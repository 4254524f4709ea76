package ipc

// A pool's name resolution: the addresses it dials, when it asks its
// Resolver again, and what it does with a bad answer.
//
// The pool keeps its last good answer (resolved) and a list of the
// addresses of that answer not yet tried in the current round (addrs),
// refilled from the answer, addresses it has no connection to first. It
// asks the Resolver again (one resolution at a time; concurrent attempts
// wait for it):
//   - when it has no answer yet;
//   - before an attempt that finds addrs empty, when a connection or an
//     attempt failed since the last answer (stale), or the answer is older
//     than ResolveInterval; in both cases no sooner than MinResolveInterval
//     after the previous resolution: until then it dials the addresses it
//     has (the reconnect backoff spaces those attempts);
//   - every ResolveInterval while it has connections (a timer on
//     Config.Clock), retried after a failure with backoff from
//     MinResolveInterval up to ResolveInterval.
//
// A good answer replaces the addresses; connections to addresses it no
// longer lists are retired (they finish their messages, then close with
// ErrAddressGone) and the pool dials current addresses instead. A failed
// resolution (an error, nothing, or only invalid entries) changes nothing:
// the pool keeps its connections and dials the addresses it had; only a
// pool with no address at all fails the attempt (ErrResolve), which counts
// as a failed attempt (backoff, one-shot messages fail).

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
)

// maxResolvedAddrs bounds the addresses kept from one answer; entries
// beyond it are dropped and counted as bad.
const maxResolvedAddrs = 256

// ResolverCounts count a service's or a pool's name resolutions.
type ResolverCounts struct {
	// Resolutions counts good answers (at least one valid address).
	Resolutions uint64
	// Failures counts failed resolutions: an error, no address, or only
	// invalid addresses (ErrResolve). The pool kept its addresses.
	Failures uint64
	// BadAddresses counts answer entries dropped: not an "ip:port" with a
	// nonzero port, or beyond the first 256.
	BadAddresses uint64
	// Changes counts good answers that changed the pool's addresses.
	Changes uint64
	// Retired counts connections retired because their address left the
	// answer (ErrAddressGone).
	Retired uint64
}

// resolverCounters are the service-wide atomics behind Stats.Resolver.
type resolverCounters struct {
	resolutions, failures, bad, changes, retired atomic.Uint64
}

func (r *resolverCounters) load() ResolverCounts {
	return ResolverCounts{
		Resolutions:  r.resolutions.Load(),
		Failures:     r.failures.Load(),
		BadAddresses: r.bad.Load(),
		Changes:      r.changes.Load(),
		Retired:      r.retired.Load(),
	}
}

// isStaticName reports whether name can never resolve differently: an IP
// address resolved by the system resolver.
func isStaticName(r Resolver, name string) bool {
	if _, ok := r.(SystemResolver); !ok {
		return false
	}
	_, err := netip.ParseAddrPort(name)
	return err == nil
}

// validAddrs returns the valid entries of an answer in canonical form,
// without duplicates, at most maxResolvedAddrs, and how many it dropped.
func validAddrs(raw []string) (addrs []string, bad int) {
	for _, s := range raw {
		ap, err := netip.ParseAddrPort(s)
		if err != nil || ap.Port() == 0 || !ap.Addr().IsValid() || len(addrs) == maxResolvedAddrs {
			bad++
			continue
		}
		if a := ap.String(); !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	return addrs, bad
}

// nextAddr returns the address for one connection attempt (dial
// goroutine), resolving the name first if need be.
func (p *pool) nextAddr(ctx context.Context) (string, error) {
	for {
		p.mu.Lock()
		if a, ok := p.popAddrLocked(); ok {
			p.mu.Unlock()
			return a, nil
		}
		if w := p.resolving; w != nil {
			p.mu.Unlock()
			select {
			case <-w:
			case <-ctx.Done():
				return "", fmt.Errorf("%w: %s: %w", ErrResolve, p.name, context.Cause(ctx))
			}
			p.mu.Lock()
			if p.resolved == nil && len(p.addrs) == 0 {
				// That resolution failed, with no earlier answer to fall
				// back on: this attempt fails with it too.
				err := p.resolveErr
				p.mu.Unlock()
				return "", err
			}
			p.mu.Unlock()
			continue
		}
		if !p.resolveDueLocked() {
			p.refillLocked()
			if a, ok := p.popAddrLocked(); ok {
				p.mu.Unlock()
				return a, nil
			}
		}
		p.startResolveLocked()
		p.mu.Unlock()
		err := p.resolve(ctx)
		p.mu.Lock()
		if len(p.addrs) == 0 {
			p.refillLocked()
		}
		a, ok := p.popAddrLocked()
		p.mu.Unlock()
		if ok {
			return a, nil
		}
		return "", err
	}
}

func (p *pool) popAddrLocked() (string, bool) {
	n := len(p.addrs)
	if n == 0 {
		return "", false
	}
	a := p.addrs[n-1]
	p.addrs = p.addrs[:n-1]
	return a, true
}

// refillLocked starts a new round over the last good answer: addresses
// with no open connection first, each group in the answer's order (addrs
// is a stack, the next address last).
func (p *pool) refillLocked() {
	p.addrs = p.addrs[:0]
	for _, connected := range []bool{true, false} {
		for i := len(p.resolved) - 1; i >= 0; i-- {
			if p.connectedLocked(p.resolved[i]) == connected {
				p.addrs = append(p.addrs, p.resolved[i])
			}
		}
	}
}

// connectedLocked reports whether the pool has a connection, not retired,
// to addr.
func (p *pool) connectedLocked(addr string) bool {
	for _, pc := range p.conns {
		if !pc.retired && pc.c.addr == addr {
			return true
		}
	}
	return false
}

// resolveDueLocked reports whether the next attempt must resolve the name
// rather than reuse the last answer.
func (p *pool) resolveDueLocked() bool {
	if p.resolved == nil {
		return true
	}
	if p.static {
		return false
	}
	cfg := &p.svc.cfg
	now := cfg.Clock.Now()
	due := p.stale || (cfg.ResolveInterval > 0 && now.Sub(p.resolvedAt) >= cfg.ResolveInterval)
	return due && now.Sub(p.lastResolve) >= cfg.MinResolveInterval
}

// startResolveLocked marks a resolution under way; resolve ends it.
func (p *pool) startResolveLocked() {
	p.resolving = make(chan struct{})
	p.lastResolve = p.svc.cfg.Clock.Now()
}

// resolve asks the Resolver for the pool's addresses and applies the
// answer (off the loops; the caller called startResolveLocked). It
// returns the error of a failed resolution, which leaves the pool's
// addresses and connections as they were.
func (p *pool) resolve(ctx context.Context) error {
	cfg := &p.svc.cfg
	raw, err := cfg.Resolver.Resolve(ctx, p.name)
	addrs, bad := validAddrs(raw)
	switch {
	case err != nil:
		err = fmt.Errorf("%w: %s: %w", ErrResolve, p.name, err)
	case len(raw) == 0:
		err = fmt.Errorf("%w: %s", ErrNoAddress, p.name)
	case len(addrs) == 0:
		err = fmt.Errorf("%w: %s: %q", ErrBadAddress, p.name, raw[:min(len(raw), 4)])
	}
	sc := &p.svc.counters.resolver
	p.mu.Lock()
	close(p.resolving)
	p.resolving, p.resolveErr = nil, err
	p.stats.Resolver.BadAddresses += uint64(bad)
	sc.bad.Add(uint64(bad))
	changed := false
	var gone []*conn
	if err != nil {
		p.stats.Resolver.Failures++
		sc.failures.Add(1)
	} else {
		p.stats.Resolver.Resolutions++
		sc.resolutions.Add(1)
		changed = p.resolved != nil && !sameAddrs(p.resolved, addrs)
		p.resolved, p.resolvedAt, p.stale = addrs, cfg.Clock.Now(), false
		if changed {
			p.stats.Resolver.Changes++
			sc.changes.Add(1)
			p.addrs = p.addrs[:0] // a new round over the new answer
			gone = p.retireGoneLocked()
		}
	}
	p.armRefreshLocked(err != nil)
	live := p.state.Load() <= poolClosing // no events once stopped or closed
	p.mu.Unlock()
	for _, c := range gone {
		c.rc.Wake() // its pump retires it
	}
	if err != nil {
		cfg.Logger.Warn("ipc: name resolution failed", "pool", p.name, "err", err, "bad_addresses", bad)
		if live {
			p.eventAddrs(PoolResolveFailed, nil, err)
		}
		return err
	}
	if bad > 0 {
		cfg.Logger.Warn("ipc: resolver answered invalid addresses", "pool", p.name, "bad_addresses", bad)
	}
	if changed {
		cfg.Logger.Info("ipc: pool addresses changed", "pool", p.name, "addrs", addrs, "retired", len(gone))
		if live {
			p.eventAddrs(PoolAddressesChanged, addrs, nil)
		}
	}
	return nil
}

// sameAddrs reports whether a and b hold the same addresses.
func sameAddrs(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// retireGoneLocked asks every connection whose address is not in the
// answer to retire, and returns them to be woken.
func (p *pool) retireGoneLocked() []*conn {
	var gone []*conn
	for _, pc := range p.conns {
		if !pc.retired && pc.c.addr != "" && !slices.Contains(p.resolved, pc.c.addr) && !pc.c.addrGone.Swap(true) {
			p.stats.Resolver.Retired++
			p.svc.counters.resolver.retired.Add(1)
			gone = append(gone, pc.c)
		}
	}
	return gone
}

// goneOnOpenLocked marks a connection that opens to an address the answer
// no longer lists (the answer changed while it was dialed); its first pump
// retires it.
func (p *pool) goneOnOpenLocked(c *conn) {
	if p.static || p.resolved == nil || c.addr == "" || slices.Contains(p.resolved, c.addr) {
		return
	}
	if !c.addrGone.Swap(true) {
		p.stats.Resolver.Retired++
		p.svc.counters.resolver.retired.Add(1)
	}
}

// armRefreshLocked arms the periodic resolution: ResolveInterval after a
// good answer, and after a failed one MinResolveInterval (at least
// ReconnectMin) doubling with each failure in a row, up to
// ResolveInterval.
func (p *pool) armRefreshLocked(failed bool) {
	cfg := &p.svc.cfg
	if p.static || cfg.ResolveInterval <= 0 || p.resolved == nil {
		return
	}
	if st := p.state.Load(); st != poolOpen && st != poolClosing {
		return
	}
	d := cfg.ResolveInterval
	if failed {
		p.refreshFails++
		d = max(cfg.MinResolveInterval, cfg.ReconnectMin)
		for i := 1; i < p.refreshFails && d < cfg.ResolveInterval; i++ {
			d *= 2
		}
		d = min(d, cfg.ResolveInterval)
	} else {
		p.refreshFails = 0
	}
	p.stopRefreshLocked()
	gen := p.refreshGen
	p.refresh = cfg.Clock.AfterFunc(d, func() { p.refreshDue(gen) })
}

// stopRefreshLocked stops the periodic resolution; a call already due
// finds its generation outdated and does nothing.
func (p *pool) stopRefreshLocked() {
	p.refreshGen++
	if p.refresh != nil {
		p.refresh.Stop()
		p.refresh = nil
	}
}

// refreshDue runs the periodic resolution (the clock's goroutine): on a
// goroutine of its own, if the pool still has connections and no
// resolution is under way (that one re-arms the timer). A pool without
// connections resolves when it next dials.
func (p *pool) refreshDue(gen uint64) {
	p.mu.Lock()
	if gen != p.refreshGen {
		p.mu.Unlock()
		return // stopped or re-armed meanwhile
	}
	p.refresh = nil
	st := p.state.Load()
	if (st != poolOpen && st != poolClosing) || len(p.conns) == 0 || p.resolving != nil {
		p.mu.Unlock()
		return
	}
	p.startResolveLocked()
	// Stop waits for this goroutine: it stops the pools (under p.mu, so
	// after this Add or with no Add) before it waits.
	p.svc.dialWG.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.svc.dialWG.Done()
		ctx, cancel := context.WithTimeout(p.svc.ctx, p.svc.cfg.DialTimeout)
		defer cancel()
		_ = p.resolve(ctx)
	}()
}

// eventAddrs reports a resolution event with the addresses concerned.
func (p *pool) eventAddrs(kind PoolEventKind, addrs []string, err error) {
	if h := p.svc.cfg.PoolEvent; h != nil {
		h(PoolEvent{Kind: kind, Pool: p.name, Addrs: slices.Clone(addrs), Err: err})
	}
}
