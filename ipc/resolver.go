package ipc

import (
	"context"
	"fmt"
	"net"
)

// Resolver turns a destination name into the addresses to dial. It is the
// hook for service discovery: a pool calls it when it first needs an
// address, again every Config.ResolveInterval while it has connections,
// and after a failed connection (at most once per
// Config.MinResolveInterval).
//
// The contract:
//   - Resolve is called off the event loops, on a goroutine of the pool's
//     (at most one at a time per pool), and may block until ctx ends (a
//     bound of Config.DialTimeout, and the service's Stop).
//   - It returns addresses as "ip:port" (an IP literal and a nonzero port,
//     as netip.ParseAddrPort reads them), best first. The pool dials them
//     one per connection attempt, addresses it has no connection to first.
//     Other entries are dropped and counted (ResolverCounts.BadAddresses),
//     as are entries beyond the first 256.
//   - An error, an empty answer or one with no valid entry counts as a
//     failure (ErrResolve, ErrNoAddress, ErrBadAddress): the pool keeps its
//     connections and the addresses of its last good answer.
//   - A good answer replaces the pool's addresses: connections to
//     addresses no longer in it are retired (ErrAddressGone), so an answer
//     must list every address still in service, not a sample.
//
// ResolverFunc adapts a function; SystemResolver (the default) and
// SRVResolver use DNS.
type Resolver interface {
	Resolve(ctx context.Context, name string) ([]string, error)
}

// SystemResolver resolves "host:port" names with net.DefaultResolver. A
// name that is already an IP address resolves to itself (and a pool never
// resolves it again).
type SystemResolver struct{}

// Resolve implements Resolver.
func (SystemResolver) Resolve(ctx context.Context, name string) ([]string, error) {
	return lookupHostPort(ctx, net.DefaultResolver, name)
}

// lookupHostPort resolves name's host with r and pairs each address with
// name's port.
func lookupHostPort(ctx context.Context, r *net.Resolver, name string) ([]string, error) {
	host, port, err := net.SplitHostPort(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrBadName, name, err)
	}
	if net.ParseIP(host) != nil {
		return []string{name}, nil
	}
	ips, err := r.LookupHost(ctx, host)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = net.JoinHostPort(ip, port)
	}
	return out, nil
}

// ResolverFunc adapts a function to Resolver.
type ResolverFunc func(ctx context.Context, name string) ([]string, error)

// Resolve calls f.
func (f ResolverFunc) Resolve(ctx context.Context, name string) ([]string, error) {
	return f(ctx, name)
}
