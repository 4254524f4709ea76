package ipc

import (
	"context"
	"fmt"
	"net"
)

// Resolver turns a destination name into the addresses ("ip:port") to dial.
// It is called off the event loops and may block until ctx ends.
type Resolver interface {
	Resolve(ctx context.Context, name string) ([]string, error)
}

// SystemResolver resolves "host:port" names with net.DefaultResolver. A
// name that is already an IP address resolves to itself.
type SystemResolver struct{}

// Resolve implements Resolver.
func (SystemResolver) Resolve(ctx context.Context, name string) ([]string, error) {
	host, port, err := net.SplitHostPort(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrBadName, name, err)
	}
	if net.ParseIP(host) != nil {
		return []string{name}, nil
	}
	ips, err := net.DefaultResolver.LookupHost(ctx, host)
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
