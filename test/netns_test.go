package test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// Multi-host scenarios: the client in the test process, its peers on
// hosts that are network namespaces (netns_lab_test.go), one destination
// name resolving to several of them (a pluggable resolver answering the
// hosts' addresses). Links go down and hosts black-hole packets for real;
// the client's keepalive and dead-peer timers run on a manual clock, so
// "30 s of silence" takes no time. Connection attempts to a black-holed
// host end with DialTimeout, in real time (1 s here).
//
// Identifiers of this file start with "ns".

// nsName is the destination name of the scenarios.
const nsName = "fleet.lab.test:7000"

// nsRequests sends echo requests to a name and counts their completions
// per index.
type nsRequests struct {
	*plSignal
	name   string
	mu     sync.Mutex
	counts map[uint32]int
	errs   map[uint32]error
}

func newNSRequests(name string) *nsRequests {
	return &nsRequests{plSignal: newPLSignal(), name: name, counts: map[uint32]int{}, errs: map[uint32]error{}}
}

// send sends requests first..first+n-1 with flags.
func (r *nsRequests) send(t testing.TB, client *ipc.Service, first, n int, flags ipc.Flags) {
	t.Helper()
	for i := first; i < first+n; i++ {
		require.NoError(t, ipc.SendRequest(client, r.name, testmsg.New(i, 1000), flags,
			func(req, resp *testmsg.Message, err error) {
				if err == nil {
					err = testmsg.Verify(resp, 1000)
				}
				r.mu.Lock()
				r.counts[req.Idx]++
				if err != nil {
					r.errs[req.Idx] = err
				}
				r.mu.Unlock()
				r.notify()
			}))
	}
}

// done reports how many distinct requests have completed.
func (r *nsRequests) done() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.counts)
}

// wait blocks until n distinct requests have completed.
func (r *nsRequests) wait(t testing.TB, n int) {
	t.Helper()
	r.waitFor(t, fmt.Sprintf("%d requests to complete", n), func() bool { return r.done() >= n })
}

// check requires, once nothing can complete any more, that requests
// 0..n-1 completed exactly once each, and returns their errors.
func (r *nsRequests) check(t testing.TB, n int) map[uint32]error {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Len(t, r.counts, n)
	for i := range n {
		require.Equal(t, 1, r.counts[uint32(i)], "request %d completions", i)
	}
	return r.errs
}

// nsStop stops the client now (so that nothing more completes).
func nsStop(t testing.TB, client *ipc.Service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	require.NoError(t, client.Stop(ctx))
}

// nsDeadPeer moves the clock by KeepAlive steps until the dead-peer timeout
// has passed for a connection that heard nothing since the clock's start,
// waiting after each ping step for the connection's timer to be re-armed
// (the ping has been written), then waits for that connection to stop and
// returns its error. Only that connection's timer may be on the clock.
func nsDeadPeer(t testing.TB, clk kaClock, stops *kaStops, keepAlive, deadPeer time.Duration) error {
	t.Helper()
	for elapsed := keepAlive; elapsed < deadPeer; elapsed += keepAlive {
		clk.step(t, keepAlive, "the keepalive tick")
		require.Empty(t, stops.list(), "closed before the dead-peer timeout")
	}
	clk.Advance(keepAlive)
	return stops.first(t, "the dead-peer timeout")
}

// TestNetnsPendingLimit: the name resolves to three hosts, the first of
// which black-holes packets. With MaxPendingConnections 1 the pool makes
// one attempt at a time, so nothing opens until the attempt to the dead
// host has timed out; then it connects to the two others (up to
// MaxActiveConnections 3, one attempt at a time) and every request is
// answered.
func TestNetnsPendingLimit(t *testing.T) {
	lab := newNetnsLab(t, 3)
	dead, a, b := lab.hosts[0], lab.hosts[1], lab.hosts[2]
	dead.blackHole()

	var (
		clientP       atomic.Pointer[ipc.Service]
		maxPending    plMax
		opened        atomic.Bool
		failedAtFirst atomic.Int64
	)
	sample := func() {
		if c := clientP.Load(); c != nil {
			if st, ok := c.PoolStats(nsName); ok {
				maxPending.add(st.Pending)
			}
		}
	}
	events := newPLEvents()
	events.sample = func(e ipc.PoolEvent) {
		sample()
		if e.Kind == ipc.PoolConnectionStart && opened.CompareAndSwap(false, true) {
			failedAtFirst.Store(int64(events.count(ipc.PoolConnectFailed)))
		}
	}
	answer := []string{dead.Addr(), a.Addr(), b.Addr()}
	client := startService(t, ipc.Config{
		Protocol:              plClientProto(),
		MaxActiveConnections:  3,
		MaxPendingConnections: 1,
		DialTimeout:           time.Second,
		PoolEvent:             events.add,
		Clock:                 newKAClock(),
		Resolver: ipc.ResolverFunc(func(context.Context, string) ([]string, error) {
			sample()
			return answer, nil
		}),
	})
	clientP.Store(client)

	const n = 40
	reqs := newNSRequests(nsName)
	reqs.send(t, client, 0, n, 0)
	sample()
	reqs.wait(t, n)
	nsStop(t, client)
	for i, err := range reqs.check(t, n) {
		require.NoError(t, err, "request %d", i)
	}
	require.LessOrEqual(t, maxPending.v.Load(), int64(1), "more than MaxPendingConnections attempts at once")
	require.GreaterOrEqual(t, failedAtFirst.Load(), int64(1), "a connection opened while the attempt to the dead host was pending")
	failed := events.of(ipc.PoolConnectFailed)
	require.NotEmpty(t, failed)
	var timeout interface{ Timeout() bool }
	require.ErrorAs(t, failed[0].Err, &timeout, "the dead host's attempt ends with DialTimeout: %v", failed[0].Err)
	require.True(t, timeout.Timeout())
	accA, _ := a.peer.counts()
	accB, _ := b.peer.counts()
	require.Equal(t, 1, accA, "connections to %s", a.Addr())
	require.LessOrEqual(t, accB, 1, "connections to %s", b.Addr())
}

// TestNetnsFailover: the name resolves to hosts A, B and a dead one. The
// pool's one connection goes to A; then A's link goes down (no reset: the
// connection just hears nothing). Idempotent requests sent then wait on
// the silent connection until the dead-peer timeout closes it; they are
// sent again, and the pool moves to the next address of its answer, B,
// which answers each of them once.
func TestNetnsFailover(t *testing.T) {
	lab := newNetnsLab(t, 3)
	a, b, dead := lab.hosts[0], lab.hosts[1], lab.hosts[2]
	dead.blackHole()
	const keepAlive, deadPeer = 10 * time.Second, 30 * time.Second
	clk, events, stops := newKAClock(), newPLEvents(), newKAStops()
	client := startService(t, ipc.Config{
		Protocol:           plClientProto(),
		DialTimeout:        time.Second,
		KeepAlive:          keepAlive,
		DeadPeerTimeout:    deadPeer,
		Clock:              clk,
		ResolveInterval:    -1, // the clock carries the connection's timer only
		MinResolveInterval: -1,
		PoolEvent:          events.add,
		ConnectionStop:     stops.add,
		Resolver: ipc.ResolverFunc(func(context.Context, string) ([]string, error) {
			return []string{a.Addr(), b.Addr(), dead.Addr()}, nil
		}),
	})

	const n = 20
	reqs := newNSRequests(nsName)
	reqs.send(t, client, 0, n, ipc.Idempotent)
	reqs.wait(t, n)

	a.linkDown()
	reqs.send(t, client, n, n, ipc.Idempotent)
	err := nsDeadPeer(t, clk, stops, keepAlive, deadPeer)
	require.ErrorIs(t, err, ipc.ErrDeadPeer)
	reqs.wait(t, 2*n)
	b.peer.waitFor(t, "B to report the requests it served", func() bool {
		_, served := b.peer.counts()
		return len(served) >= n
	})
	nsStop(t, client)

	for i, err := range reqs.check(t, 2*n) {
		require.NoError(t, err, "request %d", i)
	}
	_, servedA := a.peer.counts()
	_, servedB := b.peer.counts()
	for i := range uint32(2 * n) {
		if i < n {
			require.Equal(t, 1, servedA[i], "request %d on A", i)
			require.Zero(t, servedB[i], "request %d on B", i)
		} else {
			require.Zero(t, servedA[i], "request %d reached A after its link went down", i)
			require.Equal(t, 1, servedB[i], "request %d on B", i)
		}
	}
	st := client.Stats()
	require.Equal(t, uint64(n), st.Resends, "the requests held by A's connection were sent again")
	require.Equal(t, uint64(1), st.Connections.ClosedTimeout)
	// The replacement took the next address of the round (B) at once.
	require.Zero(t, events.count(ipc.PoolConnectFailed))
	accB, _ := b.peer.counts()
	require.Equal(t, 1, accB)
}

// TestNetnsBlackHole: a host that silently drops every packet (its link
// down inside its namespace: no reset, no error on the client's side).
// A request sent to it does not hang: the dead-peer timeout closes the
// connection and the request fails with ErrConnection caused by
// ErrDeadPeer, a timeout.
func TestNetnsBlackHole(t *testing.T) {
	lab := newNetnsLab(t, 1)
	h := lab.hosts[0]
	const keepAlive, deadPeer = 10 * time.Second, 30 * time.Second
	clk, stops := newKAClock(), newKAStops()
	client := startService(t, ipc.Config{
		Protocol:        plClientProto(),
		KeepAlive:       keepAlive,
		DeadPeerTimeout: deadPeer,
		Clock:           clk,
		ConnectionStop:  stops.add,
		Resolver: ipc.ResolverFunc(func(context.Context, string) ([]string, error) {
			return []string{h.Addr()}, nil
		}),
	})
	reqs := newNSRequests(nsName)
	reqs.send(t, client, 0, 1, 0)
	reqs.wait(t, 1)

	h.blackHole()
	reqs.send(t, client, 1, 1, 0)
	err := nsDeadPeer(t, clk, stops, keepAlive, deadPeer)
	require.ErrorIs(t, err, ipc.ErrDeadPeer)
	reqs.wait(t, 2)
	nsStop(t, client)
	errs := reqs.check(t, 2)
	require.NoError(t, errs[0])
	require.ErrorIs(t, errs[1], ipc.ErrConnection)
	require.ErrorIs(t, errs[1], ipc.ErrDeadPeer)
	var timeout interface{ Timeout() bool }
	require.True(t, errors.As(errs[1], &timeout) && timeout.Timeout(), "a timeout: %v", errs[1])
	require.Equal(t, uint64(1), client.Stats().Connections.ClosedTimeout)
}

// TestNetnsSOCKS5: the destination host can be reached only through a
// SOCKS5 proxy (microsocks) running in a namespace of its own: the
// client's route to the destination is down, and the proxy's host has a
// link of its own to it. Requests go through the proxy with the name
// resolved by the proxy (an address it can reach) and with the name
// resolved by the client's pluggable resolver (ResolveLocally).
func TestNetnsSOCKS5(t *testing.T) {
	lab := newNetnsLab(t, 2)
	dest, px := lab.hosts[0], lab.hosts[1]
	destIP := lab.link(px, dest)
	dest.linkDown()
	proxy := startMicrosocks(t, socks5Options{ListenIP: px.ip, Port: 1080, Exec: []string{"ip", "netns", "exec", px.name}})
	destAddr := fmt.Sprintf("%s:%d", destIP, netnsPort)

	for i, local := range []bool{false, true} {
		t.Run(fmt.Sprintf("ResolveLocally=%v", local), func(t *testing.T) {
			name := destAddr
			if local {
				name = "dest.lab.test:7000"
			}
			client := startService(t, ipc.Config{
				Protocol: plClientProto(),
				Proxy:    &ipc.SOCKS5{Addr: proxy.Addr, ResolveLocally: local},
				Resolver: ipc.ResolverFunc(func(_ context.Context, n string) ([]string, error) {
					if n != "dest.lab.test:7000" {
						return nil, fmt.Errorf("unexpected name %q", n)
					}
					return []string{destAddr}, nil
				}),
			})
			const n = 10
			reqs := newNSRequests(name)
			reqs.send(t, client, 0, n, 0)
			reqs.wait(t, n)
			st, _ := client.PoolStats(name)
			nsStop(t, client)
			for idx, err := range reqs.check(t, n) {
				require.NoError(t, err, "request %d", idx)
			}
			if local {
				require.Equal(t, uint64(1), st.Resolver.Resolutions)
			} else {
				require.Zero(t, st.Resolver.Resolutions, "the proxy resolves the name")
			}
			dest.peer.waitFor(t, "the destination to report its connection", func() bool {
				acc, _ := dest.peer.counts()
				return acc >= i+1
			})
		})
	}
	accPx, _ := px.peer.counts()
	require.Zero(t, accPx, "the proxy's host was asked for the destination's service")
}
