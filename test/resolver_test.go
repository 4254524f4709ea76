package test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// Names that move: a pool resolves its name again periodically and after
// failures, follows a changed answer, and survives bad answers
// (ipc/resolver_pool.go, docs/tuning.md 2.9b). The resolver is the test's
// (rsResolver), its answer changed by the test; time is a clock.Manual
// (ipc.Config.Clock), so the periodic resolution and the backoff run when
// the test moves the clock. Keepalives are off: only resolution timers and
// the backoff are on the clock.
//
// Identifiers of this file start with "rs".

// rsResolver answers what the test set last, and counts its calls.
type rsResolver struct {
	mu     sync.Mutex
	answer []string
	err    error
	calls  int
}

func (r *rsResolver) set(answer []string, err error) {
	r.mu.Lock()
	r.answer, r.err = answer, err
	r.mu.Unlock()
}

func (r *rsResolver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// Resolve implements ipc.Resolver.
func (r *rsResolver) Resolve(context.Context, string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	return append([]string(nil), r.answer...), r.err
}

// rsName is the destination name of the scenarios: not an address, so
// only the test's resolver gives it addresses.
const rsName = "orders.service.test:7000"

// rsClient starts a client on a manual clock with the test's resolver.
func rsClient(t testing.TB, res ipc.Resolver, clk kaClock, events *plEvents, stops *kaStops, tune func(*ipc.Config)) *ipc.Service {
	t.Helper()
	cfg := ipc.Config{
		Protocol:           plClientProto(),
		Resolver:           res,
		Clock:              clk,
		KeepAlive:          -1,
		ResolveInterval:    30 * time.Second,
		MinResolveInterval: 5 * time.Second,
		PoolEvent:          events.add,
		ConnectionStop:     stops.add,
	}
	if tune != nil {
		tune(&cfg)
	}
	return startService(t, cfg)
}

// TestResolverNameMoves: the name moves from server A to server B. The
// pool notices at its periodic resolution (ResolveInterval), retires its
// connection to A (ErrAddressGone, after its messages) and sends the next
// request to B.
func TestResolverNameMoves(t *testing.T) {
	a := startService(t, ipc.Config{Protocol: plEchoProto(nil), Listen: "127.0.0.1:0"})
	b := startService(t, ipc.Config{Protocol: plEchoProto(nil), Listen: "127.0.0.1:0"})
	res := &rsResolver{answer: []string{a.Addr().String()}}
	clk, events, stops := newKAClock(), newPLEvents(), newKAStops()
	client := rsClient(t, res, clk, events, stops, nil)

	kaEcho(t, client, rsName, 0, 100)
	require.Equal(t, uint64(1), a.Stats().Connections.Accepted)
	st, _ := client.PoolStats(rsName)
	require.Equal(t, []string{a.Addr().String()}, st.Addresses)

	res.set([]string{b.Addr().String()}, nil)
	clk.Advance(29 * time.Second)
	require.Equal(t, 1, res.count(), "resolved again before ResolveInterval")
	clk.Advance(time.Second)
	events.waitCount(t, ipc.PoolAddressesChanged, 1)
	require.Equal(t, []string{b.Addr().String()}, events.of(ipc.PoolAddressesChanged)[0].Addrs)
	require.ErrorIs(t, stops.first(t, "the connection to A retiring"), ipc.ErrAddressGone)

	kaEcho(t, client, rsName, 1, 100)
	require.Equal(t, uint64(1), b.Stats().Connections.Accepted, "the request went to B")
	require.Equal(t, uint64(1), a.Stats().Connections.Accepted, "nothing more went to A")
	require.Equal(t, 2, res.count())
	cs := client.Stats()
	require.Equal(t, ipc.ResolverCounts{Resolutions: 2, Changes: 1, Retired: 1}, cs.Resolver)
	require.Equal(t, uint64(1), cs.Connections.ClosedLocal, "a retired connection closes locally")
	st, _ = client.PoolStats(rsName)
	require.Equal(t, cs.Resolver, st.Resolver)
	require.Equal(t, []string{b.Addr().String()}, st.Addresses)
}

// TestResolverBadAnswers: once the pool has an address, a resolver that
// fails, answers nothing or answers garbage changes nothing: each failure
// is an event and a count with its named error, the periodic resolution
// backs off (MinResolveInterval, doubling), and the pool's connection
// keeps serving. Invalid entries beside a valid one are dropped and
// counted.
func TestResolverBadAnswers(t *testing.T) {
	server := startService(t, ipc.Config{Protocol: plEchoProto(nil), Listen: "127.0.0.1:0"})
	addr := server.Addr().String()
	res := &rsResolver{answer: []string{addr}}
	clk, events, stops := newKAClock(), newPLEvents(), newKAStops()
	client := rsClient(t, res, clk, events, stops, nil)
	kaEcho(t, client, rsName, 0, 100)

	garbage := []string{"not an address", "10.1.2.3", "10.1.2.3:0", "db.example:80", "[::1]:99999"}
	steps := []struct {
		answer []string
		err    error
		after  time.Duration // since the previous resolution
		want   error         // nil: a good answer
	}{
		{nil, errors.New("discovery down"), 30 * time.Second, ipc.ErrResolve},
		{nil, nil, 5 * time.Second, ipc.ErrNoAddress},
		{garbage, nil, 10 * time.Second, ipc.ErrBadAddress},
		{append([]string{"garbage"}, addr), nil, 20 * time.Second, nil},
		{nil, nil, 30 * time.Second, ipc.ErrNoAddress},
	}
	failures := 0
	for i, s := range steps {
		res.set(s.answer, s.err)
		clk.Advance(s.after - time.Nanosecond)
		require.Equal(t, i+1, res.count(), "step %d: resolved before its time", i)
		clk.Advance(time.Nanosecond)
		// The resolution runs on a goroutine of the pool's, which re-arms
		// the periodic timer when it is done (the only timer of the clock).
		clk.armed(t, 1, "the next periodic resolution")
		if s.want == nil {
			continue // checked by the counts at the end
		}
		failures++
		events.waitCount(t, ipc.PoolResolveFailed, failures)
		err := events.of(ipc.PoolResolveFailed)[failures-1].Err
		require.ErrorIs(t, err, s.want, "step %d", i)
		require.ErrorIs(t, err, ipc.ErrResolve, "step %d", i)
		kaEcho(t, client, rsName, i+1, 100)
	}
	require.Empty(t, stops.list(), "a connection closed")
	require.Zero(t, events.count(ipc.PoolConnectionStop))
	st, _ := client.PoolStats(rsName)
	require.Equal(t, ipc.ResolverCounts{Resolutions: 2, Failures: 4, BadAddresses: uint64(len(garbage)) + 1}, st.Resolver)
	require.Equal(t, []string{addr}, st.Addresses)
	require.Equal(t, uint64(1), st.Connects)
	require.Equal(t, st.Resolver, client.Stats().Resolver)
}

// TestResolverNoAddressOneShot: a pool whose name never resolves fails
// its attempts with ErrResolve's errors: a OneShot request fails at the
// first failed attempt, with ErrConnection caused by ErrNoAddress.
func TestResolverNoAddressOneShot(t *testing.T) {
	res := &rsResolver{}
	clk, events, stops := newKAClock(), newPLEvents(), newKAStops()
	client := rsClient(t, res, clk, events, stops, nil)
	done := make(chan error, 2)
	require.NoError(t, ipc.SendRequest(client, rsName, testmsg.New(0, 10), ipc.OneShot,
		func(_, _ *testmsg.Message, err error) { done <- err }))
	select {
	case err := <-done:
		require.ErrorIs(t, err, ipc.ErrConnection)
		require.ErrorIs(t, err, ipc.ErrNoAddress)
	case <-time.After(deadline):
		t.Fatal("the one-shot request never completed")
	}
	events.waitCount(t, ipc.PoolConnectFailed, 1)
	require.ErrorIs(t, events.of(ipc.PoolConnectFailed)[0].Err, ipc.ErrNoAddress)
	require.Equal(t, uint64(1), client.Stats().Resolver.Failures)
	require.Empty(t, done, "completed twice")
}

// TestResolverAfterFailure: the server goes away and the name moves to
// another one. The pool redials the address it has at the backoff's pace
// and resolves the name again only once MinResolveInterval has passed
// since the last resolution; then it reaches the new server.
func TestResolverAfterFailure(t *testing.T) {
	a, err := ipc.NewService(ipc.Config{Protocol: plEchoProto(nil), Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	require.NoError(t, a.Start())
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	b := startService(t, ipc.Config{Protocol: plEchoProto(nil), Listen: "127.0.0.1:0"})
	res := &rsResolver{answer: []string{a.Addr().String()}}
	clk, events, stops := newKAClock(), newPLEvents(), newKAStops()
	client := rsClient(t, res, clk, events, stops, func(c *ipc.Config) {
		c.ReconnectMin, c.ReconnectMax = time.Second, time.Second // each wait in [0.5 s, 1 s]
	})
	kaEcho(t, client, rsName, 0, 100)

	res.set([]string{b.Addr().String()}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	require.NoError(t, a.Stop(ctx))
	events.waitCount(t, ipc.PoolDisconnected, 1)

	done := make(chan error, 2)
	require.NoError(t, ipc.SendRequest(client, rsName, testmsg.New(1, 100), 0,
		func(_, resp *testmsg.Message, err error) {
			if err == nil {
				err = testmsg.Verify(resp, 100)
			}
			done <- err
			events.notify()
		}))
	// Attempt k runs at most k-1 s after the resolution (the clock moves
	// 1 s after each failure; an attempt may read the time while the
	// clock is still moving, before its last step): those of the first
	// 5 s dial A again and fail; the first after 5 s resolves and dials B.
	for k := 1; ; k++ {
		events.waitFor(t, fmt.Sprintf("attempt %d to fail or the request to complete", k), func() bool {
			return len(done) > 0 || events.count(ipc.PoolConnectFailed) >= k
		})
		if len(done) > 0 {
			break
		}
		if k-1 < 5 {
			require.Equal(t, 1, res.count(), "resolved again %d s after the last resolution", k-1)
		}
		require.Less(t, k, 10, "still failing after the minimum interval")
		clk.Advance(time.Second)
	}
	require.NoError(t, <-done)
	require.Equal(t, 2, res.count())
	require.GreaterOrEqual(t, events.count(ipc.PoolConnectFailed), 5)
	require.Equal(t, uint64(1), b.Stats().Connections.Accepted)
	require.Empty(t, done, "completed twice")
}

// TestResolverConfig: MinResolveInterval may not exceed ResolveInterval;
// its default shrinks to a shorter ResolveInterval.
func TestResolverConfig(t *testing.T) {
	_, err := ipc.NewService(ipc.Config{Protocol: plClientProto(), ResolveInterval: 5 * time.Second, MinResolveInterval: 10 * time.Second})
	require.ErrorIs(t, err, ipc.ErrInvalidConfig)
	require.ErrorContains(t, err, "MinResolveInterval")
	for _, cfg := range []ipc.Config{
		{Protocol: plClientProto(), ResolveInterval: 2 * time.Second},
		{Protocol: plClientProto(), ResolveInterval: -1},
		{Protocol: plClientProto(), ResolveInterval: -1, MinResolveInterval: -1},
	} {
		s, err := ipc.NewService(cfg)
		require.NoError(t, err, "%+v", cfg)
		require.NoError(t, s.Stop(context.Background()))
	}
}

// TestResolverRetireKeepsSyncOrder: a connection retired because its
// address left the answer keeps the synchronous role while a synchronous
// request it wrote waits for its response. When that connection then
// fails, the request (idempotent) is sent again, and it reaches the next
// server before the synchronous message queued after it (a reproduction
// of a TestChaos finding: the retiring connection used to hand its role
// over at once, and the resent request arrived after its successor).
func TestResolverRetireKeepsSyncOrder(t *testing.T) {
	arrivedA := make(chan uint32, 4)
	pa := ipc.NewProtocol()
	ipc.MustRegister(pa, 1, func(ctx ipc.Context, m *testmsg.Message) {
		arrivedA <- m.Idx // held: A never answers
	})
	a, err := ipc.NewService(ipc.Config{Protocol: pa, Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	require.NoError(t, a.Start())
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	var (
		mu       sync.Mutex
		arrivedB []uint32
	)
	b := startService(t, ipc.Config{Protocol: plEchoProto(func(_ ipc.Context, m *testmsg.Message) {
		mu.Lock()
		arrivedB = append(arrivedB, m.Idx)
		mu.Unlock()
	}), Listen: "127.0.0.1:0"})
	res := &rsResolver{answer: []string{a.Addr().String()}}
	clk, events, stops := newKAClock(), newPLEvents(), newKAStops()
	client := rsClient(t, res, clk, events, stops, nil)

	done := make(chan error, 4)
	send := func(idx int) {
		require.NoError(t, ipc.SendRequest(client, rsName, testmsg.New(idx, 100), ipc.Synchronous|ipc.Idempotent,
			func(_, _ *testmsg.Message, err error) { done <- err }))
	}
	send(0)
	select {
	case idx := <-arrivedA:
		require.Equal(t, uint32(0), idx)
	case <-time.After(deadline):
		t.Fatal("request 0 never reached A")
	}
	res.set([]string{b.Addr().String()}, nil)
	clk.Advance(30 * time.Second)
	events.waitCount(t, ipc.PoolAddressesChanged, 1)
	send(1)                                         // the connection to A retires before it could take this one
	events.waitCount(t, ipc.PoolConnectionStart, 2) // its successor, to B

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	require.NoError(t, a.Stop(ctx)) // the retired connection fails under request 0
	for range 2 {
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(deadline):
			t.Fatal("a request never completed")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []uint32{0, 1}, arrivedB, "synchronous order on B")
	require.Empty(t, done)
	select {
	case idx := <-arrivedA:
		t.Fatalf("request %d reached A again; %+v", idx, client.Stats())
	default:
	}
}
