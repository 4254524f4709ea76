package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// A System is one peer under test: a server that it can start and a client
// that it can dial. Every peer runs behind the same driver, so the only code
// that differs between peers is its System.
type System interface {
	// Name is the short name used by -peers, -serve and the result tables.
	Name() string
	// Serve starts a server listening on addr ("127.0.0.1:0" picks a free
	// port). It returns the address actually listened on and a function that
	// stops the server and waits for it. The server must answer two methods:
	// echo, which replies with the request's bytes, and sink, which accepts
	// the request's bytes and replies with nothing.
	Serve(addr string) (listen string, stop func(), err error)
	// Dial opens a client that uses exactly one connection to addr.
	Dial(addr string) (Client, error)
}

// Client is a peer's client. Call and Sink are safe for concurrent use.
type Client interface {
	// Call sends payload to the echo method and returns the reply. The
	// driver only reads the reply; it does not retain it.
	Call(ctx context.Context, payload []byte) ([]byte, error)
	// Sink sends payload to the sink method and waits for the empty reply.
	// A peer that cannot carry the payload returns an error wrapping
	// errUnsupported.
	Sink(ctx context.Context, payload []byte) error
	// Close closes the connection.
	Close() error
}

// bulkOnly is implemented by systems that take part only in the bulk
// workload (raw TCP framing serialises calls, so it is no echo peer).
type bulkOnly interface{ bulkOnly() }

// optIn is implemented by systems that run only when named in -peers, not
// under "all" (the TLS variants).
type optIn interface{ optIn() bool }

// errUnsupported marks a workload that a peer cannot run; results show n/a.
var errUnsupported = errors.New("unsupported by this peer")

// systems holds every registered peer, by name.
var systems = map[string]System{}

// register adds s to systems; peers call it from init.
func register(s System) {
	if _, dup := systems[s.Name()]; dup {
		panic("duplicate system " + s.Name())
	}
	systems[s.Name()] = s
}

// peerOrder is the print order of the known peers; unknown names sort after.
var peerOrder = []string{"ipcframe", "arpc", "rpcx", "grpc", "netrpc", "tcp", "ipcframe-tls", "grpc-tls"}

// selectSystems resolves the -peers flag ("all" or a comma list).
func selectSystems(list string) ([]System, error) {
	var names []string
	if list == "" || list == "all" {
		for n, s := range systems {
			if o, ok := s.(optIn); !ok || !o.optIn() {
				names = append(names, n)
			}
		}
	} else {
		for _, n := range strings.Split(list, ",") {
			n = strings.TrimSpace(n)
			if n == "" {
				continue
			}
			if _, ok := systems[n]; !ok {
				return nil, fmt.Errorf("unknown peer %q (known: %s)", n, strings.Join(knownNames(), ", "))
			}
			names = append(names, n)
		}
	}
	sortPeers(names)
	out := make([]System, len(names))
	for i, n := range names {
		out[i] = systems[n]
	}
	return out, nil
}

func knownNames() []string {
	var names []string
	for n := range systems {
		names = append(names, n)
	}
	sortPeers(names)
	return names
}

func sortPeers(names []string) {
	rank := func(n string) int {
		for i, p := range peerOrder {
			if p == n {
				return i
			}
		}
		return len(peerOrder)
	}
	sort.Slice(names, func(i, j int) bool {
		ri, rj := rank(names[i]), rank(names[j])
		if ri != rj {
			return ri < rj
		}
		return names[i] < names[j]
	})
}
