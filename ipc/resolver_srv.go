package ipc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
)

// SRVResolver resolves destination names through DNS SRV records (RFC
// 2782): for the name "example.com:7000" it looks up
// _Service._Proto.example.com, then the addresses of each target, and
// answers "ip:port" with each record's port, in the records' order
// (priority, then a random pick by weight, as net.Resolver.LookupSRV
// sorts them). With Service and Proto empty the name's host is looked up
// as the SRV domain itself ("_ipc._tcp.example.com:0").
//
// When the domain has no SRV record, the name's host is resolved as
// SystemResolver does, with the name's port, so one configuration serves
// names with and without SRV records.
type SRVResolver struct {
	// Service and Proto name the SRV record, e.g. "ipc" and "tcp".
	Service, Proto string
	// Resolver does the lookups; nil means net.DefaultResolver.
	Resolver *net.Resolver
}

// Resolve implements Resolver.
func (r SRVResolver) Resolve(ctx context.Context, name string) ([]string, error) {
	res := r.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	host, _, err := net.SplitHostPort(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrBadName, name, err)
	}
	_, srvs, err := res.LookupSRV(ctx, r.Service, r.Proto, host)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return lookupHostPort(ctx, res, name)
		}
		return nil, err
	}
	var out []string
	var lastErr error
	for _, s := range srvs {
		if s.Target == "." { // "service decidedly not available" (RFC 2782)
			continue
		}
		ips, err := res.LookupHost(ctx, s.Target)
		if err != nil {
			lastErr = err
			continue
		}
		port := strconv.Itoa(int(s.Port))
		for _, ip := range ips {
			out = append(out, net.JoinHostPort(ip, port))
		}
	}
	if len(out) == 0 && lastErr != nil {
		return nil, lastErr
	}
	return out, nil
}
