package test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

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
	client := startService(t, ipc.Config{
		Protocol:        semClientProto(t, nil),
		ConnectionStart: conns.start,
		ConnectionStop:  conns.stop,
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
