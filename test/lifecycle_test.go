package test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// Regression tests of the lifecycle glue (issue 7, "Defects found by
// review"): cancel against close, canceled requests that are never
// answered, reconnect backoff after a lost connection, and synchronous
// order when the pool's connections change. Identifiers start with "lc".

// lcRecv counts, per message index, the messages a server received, and
// signals each one.
type lcRecv struct {
	*plSignal
	mu     sync.Mutex
	counts map[uint32]int
	order  []uint32
}

func newLCRecv() *lcRecv { return &lcRecv{plSignal: newPLSignal(), counts: map[uint32]int{}} }

func (r *lcRecv) add(idx uint32) {
	r.mu.Lock()
	r.counts[idx]++
	r.order = append(r.order, idx)
	r.mu.Unlock()
	r.notify()
}

// has reports whether every index in [from, to) arrived.
func (r *lcRecv) has(from, to int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := from; i < to; i++ {
		if r.counts[uint32(i)] == 0 {
			return false
		}
	}
	return true
}

// lcConns keeps the handles of a service's open connections, in open
// order.
type lcConns struct {
	*plSignal
	mu    sync.Mutex
	conns []ipc.Conn
	open  map[uint64]bool
}

func newLCConns() *lcConns { return &lcConns{plSignal: newPLSignal(), open: map[uint64]bool{}} }

func (c *lcConns) start(ci ipc.ConnInfo) {
	c.mu.Lock()
	c.conns = append(c.conns, ci.Conn)
	c.open[ci.ID] = true
	c.mu.Unlock()
	c.notify()
}

func (c *lcConns) stop(ci ipc.ConnInfo, _ error) {
	c.mu.Lock()
	delete(c.open, ci.ID)
	c.mu.Unlock()
	c.notify()
}

// current returns the open connections.
func (c *lcConns) current() []ipc.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []ipc.Conn
	for _, x := range c.conns {
		if c.open[x.ID()] {
			out = append(out, x)
		}
	}
	return out
}

func (c *lcConns) all() []ipc.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ipc.Conn(nil), c.conns...)
}

// TestCancelRacesClose (defect 1): idempotent requests wait for responses
// from a server that never answers; then the client's connection closes
// while every request is canceled through its context. Whichever comes
// first, a cancel that was asked wins: every request completes once, with
// ErrCanceled, and none is sent again and left waiting (the lost cancel
// left such a request pending until Stop). Repeated for many rounds, since
// the race is narrow.
func TestCancelRacesClose(t *testing.T) {
	const rounds, perRound = 50, 60
	recv := newLCRecv()
	server := startService(t, ipc.Config{
		Protocol: semClientProto(t, func(_ ipc.Context, m *testmsg.Message) { recv.add(m.Idx) }),
		Listen:   "127.0.0.1:0",
	})
	conns := newLCConns()
	// Every round closes the connection and the next round's requests wait
	// for the pool's redial: with the default backoff (50 ms, doubling up
	// to 10 s, since every round loses the connection) the
	// test spent 197 s of 200 s under -race waiting for it, so the pool
	// redials at once here.
	client := startService(t, ipc.Config{
		Protocol:        semClientProto(t, nil),
		ConnectionStart: conns.start,
		ConnectionStop:  conns.stop,
		ReconnectMin:    time.Millisecond,
		ReconnectMax:    5 * time.Millisecond,
	})
	addr := server.Addr().String()

	var (
		mu      sync.Mutex
		counts  = map[uint32]int{}
		results = map[uint32]error{}
	)
	done := newPLSignal()
	for round := range rounds {
		base := round * perRound
		cancels := make([]context.CancelFunc, perRound)
		for i := range perRound {
			ctx, cancel := context.WithCancel(context.Background())
			cancels[i] = cancel
			_, err := ipc.SendRequestContext(ctx, client, addr, testmsg.New(base+i, 64), ipc.Idempotent,
				func(req, _ *testmsg.Message, err error) {
					mu.Lock()
					counts[req.Idx]++
					results[req.Idx] = err
					mu.Unlock()
					done.notify()
				})
			require.NoError(t, err)
		}
		recv.waitFor(t, fmt.Sprintf("round %d delivered", round), func() bool { return recv.has(base, base+perRound) })
		open := conns.current()
		require.NotEmpty(t, open)
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			for _, c := range open {
				_ = c.Close()
			}
		}()
		for _, cancel := range cancels {
			cancel()
		}
		<-closed
		done.waitFor(t, fmt.Sprintf("round %d completed", round), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(counts) == base+perRound
		})
	}
	// Quiet: stop the client; nothing may complete a second time.
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	require.NoError(t, client.Stop(ctx))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, counts, rounds*perRound)
	for idx, n := range counts {
		require.Equal(t, 1, n, "request %d completions", idx)
		require.ErrorIs(t, results[idx], ipc.ErrCanceled, "request %d", idx)
	}
}

// TestCancelRacesStop (defect 6): Cancel and Stop on the same queued
// messages at once. Under -race this caught the unguarded write of a
// message's queue state by Stop; every message completes once, canceled
// or failed by the stop.
func TestCancelRacesStop(t *testing.T) {
	const n = 200
	client := startService(t, ipc.Config{
		Protocol:     semClientProto(t, nil),
		ReconnectMin: 3600e9,
		ReconnectMax: 3600e9,
	})
	addr := semDeadAddr(t)
	var (
		mu     sync.Mutex
		counts = map[int]int{}
		bad    []error
	)
	ids := make([]ipc.MessageID, n)
	for i := range n {
		id, err := client.SendContext(context.Background(), addr, testmsg.New(i, 64), 0, func(err error) {
			mu.Lock()
			defer mu.Unlock()
			counts[i]++
			if !errors.Is(err, ipc.ErrCanceled) && !errors.Is(err, ipc.ErrServiceStopped) {
				bad = append(bad, fmt.Errorf("message %d: %w", i, err))
			}
		})
		require.NoError(t, err)
		ids[i] = id
	}
	// Stop with a context that has ended: it fails the queued messages at
	// once, while Cancel looks at them.
	stopped := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	go func() { stopped <- client.Stop(ctx) }()
	for _, id := range ids {
		if err := client.Cancel(id); err != nil {
			require.ErrorIs(t, err, ipc.ErrUnknownMessage)
		}
	}
	// Stop reports the ended context unless the cancels completed every
	// message before it looked.
	if err := semAwait(t, stopped, "Stop"); err != nil {
		require.ErrorIs(t, err, context.Canceled)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, bad)
	require.Len(t, counts, n)
	for i, c := range counts {
		require.Equal(t, 1, c, "message %d completions", i)
	}
}

// TestCanceledWaitsBounded (defect 2): requests canceled while they wait
// for a response that never comes must not hold writer slots forever.
// With MaxMultiplex 2 and MaxResponseWait 4, three times that many such
// requests are canceled one after the other; each one is still sent (the
// pool retires the clogged connection and opens another one), and a final
// request is answered.
func TestCanceledWaitsBounded(t *testing.T) {
	const answerFrom = 1000
	recv := newLCRecv()
	server := startService(t, ipc.Config{
		Protocol: semClientProto(t, func(ctx ipc.Context, m *testmsg.Message) {
			recv.add(m.Idx)
			if m.Idx >= answerFrom {
				_ = ctx.Respond(m)
			}
		}),
		Listen: "127.0.0.1:0",
	})
	events := newPLEvents()
	client := startService(t, ipc.Config{
		Protocol:        semClientProto(t, nil),
		MaxMultiplex:    2,
		MaxResponseWait: 4,
		PoolEvent:       events.add,
	})
	addr := server.Addr().String()
	for i := range 3 * (2 + 4) {
		ctx, cancel := context.WithCancel(context.Background())
		res := make(chan error, 2)
		_, err := ipc.SendRequestContext(ctx, client, addr, testmsg.New(i, 64), 0,
			func(_, _ *testmsg.Message, err error) { res <- err })
		require.NoError(t, err)
		recv.waitFor(t, fmt.Sprintf("request %d delivered", i), func() bool { return recv.has(i, i+1) })
		cancel()
		require.ErrorIs(t, semAwait(t, res, fmt.Sprintf("request %d canceled", i)), ipc.ErrCanceled)
		require.Len(t, res, 0)
	}
	res := make(chan semResult, 2)
	require.NoError(t, ipc.SendRequest(client, addr, testmsg.New(answerFrom, 64), 0,
		func(_, resp *testmsg.Message, err error) { res <- semResult{resp, err} }))
	r := semAwait(t, res, "the final request")
	require.NoError(t, r.err)
	require.Equal(t, uint32(answerFrom), r.resp.Idx)
	// The clogged connections were retired, not failed.
	stops := events.of(ipc.PoolConnectionStop)
	require.NotEmpty(t, stops)
	for _, s := range stops {
		require.ErrorIs(t, s.Err, ipc.ErrTooManyCanceled)
	}
}

// lcRawServer accepts TCP connections and keeps them open without reading.
// closeOnAccept closes each connection at once instead.
type lcRawServer struct {
	ln       net.Listener
	accepted atomic.Int32
	mu       sync.Mutex
	conns    []net.Conn
}

func newLCRawServer(t testing.TB, closeOnAccept bool) *lcRawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &lcRawServer{ln: ln}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			if closeOnAccept {
				_ = c.Close()
				continue
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			_ = c.Close()
		}
	})
	return s
}

// TestReconnectAfterUnhealthyLoss (defect 3): a peer that accepts and
// closes at once must not be redialed in a loop. Under a manual clock:
// each loss of a connection that carried nothing counts as a failure, so
// the pool has not dialed again when it reports the loss, and the wait
// before the next dial grows as after failed attempts (5 s, then 10 s,
// with equal jitter), although every dial succeeded.
func TestReconnectAfterUnhealthyLoss(t *testing.T) {
	const minD, maxD = 5 * time.Second, 40 * time.Second
	srv := newLCRawServer(t, true)
	clk := newKAClock()
	events := newPLEvents()
	client := startService(t, ipc.Config{
		Protocol:     plClientProto(),
		ReconnectMin: minD,
		ReconnectMax: maxD,
		KeepAlive:    -1,
		PoolEvent:    events.add,
		Clock:        clk,
	})
	addr := srv.ln.Addr().String()
	require.NoError(t, client.CreatePool(addr, ipc.PoolOptions{MinConnections: 1}))
	for k := 1; k <= 3; k++ {
		events.waitFor(t, fmt.Sprintf("connection %d lost", k), func() bool {
			return events.count(ipc.PoolDisconnected)+events.count(ipc.PoolConnectFailed) >= k
		})
		clk.armed(t, 1, "the backoff timer")
		st, ok := client.PoolStats(addr)
		require.True(t, ok)
		require.Equal(t, uint64(k), st.Dials, "the pool redialed at once after an unhealthy loss")
		require.Zero(t, st.Pending)
		next, ok := clk.Next()
		require.True(t, ok)
		wait := next.Sub(clk.Now())
		d := min(minD<<(k-1), maxD)
		require.GreaterOrEqual(t, wait, d/2, "wait after loss %d", k)
		require.LessOrEqual(t, wait, d, "wait after loss %d", k)
		clk.Advance(wait)
	}
}

// TestReconnectAfterHealthyLoss (defect 3, the other side): a connection
// that carried traffic and is then lost is replaced at once, whatever the
// backoff.
func TestReconnectAfterHealthyLoss(t *testing.T) {
	sconns := newLCConns()
	server := startService(t, ipc.Config{
		Protocol:        plEchoProto(nil),
		Listen:          "127.0.0.1:0",
		ConnectionStart: sconns.start,
		ConnectionStop:  sconns.stop,
	})
	events := newPLEvents()
	client := startService(t, ipc.Config{
		Protocol:     plClientProto(),
		ReconnectMin: 3600e9,
		ReconnectMax: 3600e9,
		PoolEvent:    events.add,
	})
	addr := server.Addr().String()
	require.NoError(t, client.CreatePool(addr, ipc.PoolOptions{MinConnections: 1}))
	res := make(chan error, 1)
	require.NoError(t, ipc.SendRequest(client, addr, testmsg.New(1, 64), 0,
		func(_, _ *testmsg.Message, err error) { res <- err }))
	require.NoError(t, semAwait(t, res, "the echo"))
	open := sconns.current()
	require.Len(t, open, 1)
	require.NoError(t, open[0].Close())
	events.waitCount(t, ipc.PoolConnectionStart, 2)
	st, _ := client.PoolStats(addr)
	require.Equal(t, uint64(2), st.Dials)
}

// TestSynchronousOrderAcrossActivation (defect 5): the pool's synchronous
// messages stay on the connection that took the first of them, even when
// an older passive connection is activated meanwhile. The server reads
// nothing, so the four large synchronous messages stay in their
// connection's writer; a fifth synchronous message sent after the older
// connection's activation must wait behind them instead of leaving on the
// other connection (a server then saw 5, 1, 2, 3, 4).
func TestSynchronousOrderAcrossActivation(t *testing.T) {
	srv := newLCRawServer(t, false)
	conns := newLCConns()
	events := newPLEvents()
	client := startService(t, ipc.Config{
		Protocol:              plClientProto(),
		StartPassive:          true,
		MaxActiveConnections:  2,
		MaxPendingConnections: 1,
		ConnectionStart:       conns.start,
		ConnectionStop:        conns.stop,
		PoolEvent:             events.add,
	})
	addr := srv.ln.Addr().String()
	require.NoError(t, client.CreatePool(addr, ipc.PoolOptions{MinConnections: 2}))
	events.waitCount(t, ipc.PoolConnectionStart, 2)
	cs := conns.all()
	require.Len(t, cs, 2)
	older, newer := cs[0], cs[1]

	var doneMu sync.Mutex
	completed := map[int]error{}
	sig := newPLSignal()
	send := func(idx, size int, flags ipc.Flags) {
		require.NoError(t, client.Send(addr, testmsg.New(idx, size), flags, func(err error) {
			doneMu.Lock()
			completed[idx] = err
			doneMu.Unlock()
			sig.notify()
		}))
	}
	isDone := func(idx int) bool {
		doneMu.Lock()
		defer doneMu.Unlock()
		_, ok := completed[idx]
		return ok
	}

	require.NoError(t, newer.Activate())
	events.waitCount(t, ipc.PoolConnectionActivate, 1)
	for i := 1; i <= 4; i++ {
		send(i, 8<<20, ipc.Synchronous)
	}
	require.NoError(t, older.Activate())
	events.waitCount(t, ipc.PoolConnectionActivate, 2)
	send(5, 64, ipc.Synchronous)
	// Two small messages on the older connection itself, one after the
	// other: once the second is written, anything the older connection
	// took from the pool before it was written too.
	for _, idx := range []int{6, 7} {
		ch := make(chan error, 1)
		require.NoError(t, client.SendTo(older, testmsg.New(idx, 64), 0, func(err error) { ch <- err }))
		require.NoError(t, semAwait(t, ch, fmt.Sprintf("message %d", idx)))
	}
	require.False(t, isDone(4), "the server read nothing, yet all synchronous messages were written")
	require.False(t, isDone(5), "synchronous message 5 overtook 1..4")

	// The server never reads: abort the pool so that the messages fail.
	aborted := make(chan struct{})
	require.NoError(t, client.AbortPool(addr, func() { close(aborted) }))
	wait(t, aborted, "the pool aborted")
	sig.waitFor(t, "every message completed", func() bool {
		doneMu.Lock()
		defer doneMu.Unlock()
		return len(completed) == 5
	})
	for i := 1; i <= 5; i++ {
		require.ErrorIs(t, completed[i], ipc.ErrConnection, "message %d", i)
	}
}

// TestCreatePoolOnce (defect 7): two concurrent CreatePool calls for one
// name: exactly one succeeds (the check and the creation are one step).
func TestCreatePoolOnce(t *testing.T) {
	const names = 100
	client := startService(t, ipc.Config{
		Protocol:     plClientProto(),
		ReconnectMin: 3600e9,
		ReconnectMax: 3600e9,
	})
	port := plClosedPorts(t, 1)[0]
	_, p, err := net.SplitHostPort(port)
	require.NoError(t, err)
	var ok [names]atomic.Int32
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range names {
		name := fmt.Sprintf("127.0.%d.%d:%s", i/200, 1+i%200, p)
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if err := client.CreatePool(name, ipc.PoolOptions{}); err == nil {
					ok[i].Add(1)
				} else if !errors.Is(err, ipc.ErrInvalidConfig) {
					t.Errorf("CreatePool %s: %v", name, err)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	for i := range names {
		require.Equal(t, int32(1), ok[i].Load(), "name %d: CreatePool successes", i)
	}
}

// TestSecondStopWaits (defect 7): a second Stop returns only after the
// first one has finished draining.
func TestSecondStopWaits(t *testing.T) {
	got := make(chan struct{}, 1)
	server := startService(t, ipc.Config{
		// Never answers. The messages sent until the first Stop begins
		// arrive too: the handler must not block the loop on them.
		Protocol: semClientProto(t, func(ipc.Context, *testmsg.Message) {
			select {
			case got <- struct{}{}:
			default:
			}
		}),
		Listen: "127.0.0.1:0",
	})
	client := startService(t, ipc.Config{Protocol: semClientProto(t, nil)})
	res := make(chan error, 1)
	var completed atomic.Bool // the request's completion has run
	id, err := ipc.SendRequestContext(context.Background(), client, server.Addr().String(), testmsg.New(1, 64), 0,
		func(_, _ *testmsg.Message, err error) { completed.Store(true); res <- err })
	require.NoError(t, err)
	wait(t, got, "the request at the server")

	first := make(chan error, 1)
	go func() {
		first <- client.Stop(context.Background()) // drains: waits for the request
	}()
	// Sends fail once the first Stop has begun.
	for client.Send(server.Addr().String(), testmsg.New(2, 64), 0, nil) == nil {
		runtime.Gosched()
	}
	second := make(chan bool, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		if err := client.Stop(ctx); err != nil {
			t.Errorf("second Stop: %v", err)
		}
		// Whichever Stop call gets there first, neither returns before the
		// drain is over: the request has completed and nothing is in flight.
		second <- completed.Load() && client.Stats().InFlight == 0
	}()
	require.NoError(t, client.Cancel(id)) // lets the first Stop finish
	require.ErrorIs(t, semAwait(t, res, "the request"), ipc.ErrCanceled)
	require.NoError(t, semAwait(t, first, "the first Stop"))
	require.True(t, semAwait(t, second, "the second Stop"), "the second Stop returned before the drain was over")
}

// TestSynchronousOrderAcrossReconnect (defect 5): synchronous messages
// arrive in send order while the pool scales up (plain messages keep it
// busy) and while its connections are closed under it. Those that had
// started when their connection closed fail; the others are resent in
// order. Asserted: the server sees the synchronous messages in strictly
// increasing order (written messages complete, and a connection the
// server closes drops what it had not read, so some never arrive), each
// send completes once (checked after Stop), and closes and a scale-up did
// happen.
func TestSynchronousOrderAcrossReconnect(t *testing.T) {
	const n, size = 40, 64 << 10
	var (
		orderMu sync.Mutex
		order   []uint32
	)
	got := newPLSignal()
	sconns := newLCConns()
	server := startService(t, ipc.Config{
		Protocol: semClientProto(t, func(_ ipc.Context, m *testmsg.Message) {
			if m.Flags == 1 {
				orderMu.Lock()
				order = append(order, m.Idx)
				orderMu.Unlock()
				got.notify()
			}
		}),
		Listen:          "127.0.0.1:0",
		ConnectionStart: sconns.start,
		ConnectionStop:  sconns.stop,
	})
	client := startService(t, ipc.Config{
		Protocol:             semClientProto(t, nil),
		MaxActiveConnections: 3,
		ReconnectMin:         time.Millisecond,
		ReconnectMax:         5 * time.Millisecond,
	})
	addr := server.Addr().String()
	var (
		mu      sync.Mutex
		counts  = map[int]int{}
		results = map[int]error{}
	)
	done := newPLSignal()
	for i := range 2 * n {
		m := testmsg.New(i, size)
		flags := ipc.Flags(0)
		if i%2 == 0 {
			m.Flags, flags = 1, ipc.Synchronous
		}
		require.NoError(t, client.Send(addr, m, flags, func(err error) {
			mu.Lock()
			counts[i]++
			results[i] = err
			mu.Unlock()
			done.notify()
		}))
	}
	allDone := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(counts) == 2*n
	}
	received := func() int {
		orderMu.Lock()
		defer orderMu.Unlock()
		return len(order)
	}
	// Close every connection once a quarter of the synchronous messages
	// arrived, then again once one more arrived after that (unless all
	// were sent by then: written messages complete, and a connection
	// closed by the server drops what it had not read, so not every
	// message reaches the server).
	closes := 0
	got.waitFor(t, "a quarter of the synchronous messages", func() bool { return received() >= n/4 })
	for _, c := range sconns.current() {
		_ = c.Close()
		closes++
	}
	at := received()
	waitEither := newPLSignal()
	go func() {
		for !allDone() && received() <= at {
			select {
			case <-got.ch:
			case <-done.ch:
			}
		}
		waitEither.notify()
	}()
	waitEither.waitFor(t, "one more synchronous message", func() bool { return allDone() || received() > at })
	for _, c := range sconns.current() {
		_ = c.Close()
		closes++
	}
	done.waitFor(t, "every send completed", allDone)
	st, _ := client.PoolStats(addr)
	semStop(t, client)

	require.NotZero(t, closes)
	require.GreaterOrEqual(t, st.Connects, uint64(2))
	mu.Lock()
	defer mu.Unlock()
	for i := range 2 * n {
		require.Equal(t, 1, counts[i], "message %d completions", i)
		if err := results[i]; err != nil {
			var me *ipc.MessageError
			require.ErrorAs(t, err, &me, "message %d", i)
			require.ErrorIs(t, err, ipc.ErrConnection, "message %d", i)
			require.True(t, me.Started, "message %d failed before it started", i)
		}
	}
	orderMu.Lock()
	defer orderMu.Unlock()
	for k := 1; k < len(order); k++ {
		require.Less(t, order[k-1], order[k], "synchronous messages out of order: %v", order)
	}
}
