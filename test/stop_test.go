package test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// stHeld is a request a handler has not answered yet.
type stHeld struct {
	ctx ipc.Context
	m   *testmsg.Message
}

// stHoldProto returns a protocol whose handler answers nothing: it hands
// each request to held, for the test to answer later.
func stHoldProto(held chan<- stHeld) *ipc.Protocol {
	p := ipc.NewProtocol()
	ipc.MustRegister(p, 1, func(ctx ipc.Context, m *testmsg.Message) {
		held <- stHeld{ctx, m}
	})
	return p
}

// stRecv receives n values from ch, or fails at the deadline.
func stRecv[T any](t testing.TB, ch <-chan T, n int, what string) []T {
	t.Helper()
	out := make([]T, 0, n)
	timeout := time.After(deadline)
	for len(out) < n {
		select {
		case v := <-ch:
			out = append(out, v)
		case <-timeout:
			t.Fatalf("timed out waiting for %s: %d of %d", what, len(out), n)
		}
	}
	return out
}

// stWaitStopping waits until s has begun stopping: a send then fails with
// ErrServiceStopped (the probe's name is invalid, so before Stop it fails
// with ErrBadName and sends nothing).
func stWaitStopping(t testing.TB, s *ipc.Service) {
	t.Helper()
	timeout := time.Now().Add(deadline)
	for {
		err := s.Send("not a name", testmsg.New(0, 1), 0, nil)
		if errors.Is(err, ipc.ErrServiceStopped) {
			return
		}
		require.ErrorIs(t, err, ipc.ErrBadName)
		require.True(t, time.Now().Before(timeout), "Stop never began")
		runtime.Gosched()
	}
}

// TestStopDrainsAndRespondsWhileDraining backs docs/architecture.md §7:
// Stop waits for every accepted send, and the service keeps answering the
// requests it received while it drains. Services A and B each listen; A
// has K requests out to B, which holds them, and B has K requests out to
// A, which holds them too. A.Stop begins and must wait (A's requests are
// unanswered); meanwhile A answers B's requests, and they arrive; then B
// answers A's requests, which complete, and only then does A.Stop return,
// with nil. Every send completes exactly once, checked once all is quiet.
func TestStopDrainsAndRespondsWhileDraining(t *testing.T) {
	const k = 8
	heldA := make(chan stHeld, k)
	heldB := make(chan stHeld, k)
	a := startService(t, ipc.Config{Protocol: stHoldProto(heldA), Listen: "127.0.0.1:0"})
	b := startService(t, ipc.Config{Protocol: stHoldProto(heldB), Listen: "127.0.0.1:0"})

	type result struct {
		idx uint32
		err error
	}
	resultsA := make(chan result, 2*k)
	resultsB := make(chan result, 2*k)
	send := func(from *ipc.Service, to string, idx int, results chan<- result) {
		require.NoError(t, ipc.SendRequest(from, to, testmsg.New(idx, 100), 0,
			func(req, resp *testmsg.Message, err error) {
				if err == nil {
					err = testmsg.Verify(resp, 100)
				}
				results <- result{req.Idx, err}
			}))
	}
	for i := range k {
		send(a, b.Addr().String(), i, resultsA)
		send(b, a.Addr().String(), i, resultsB)
	}
	forB := stRecv(t, heldB, k, "B to hold A's requests")
	forA := stRecv(t, heldA, k, "A to hold B's requests")

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		stopped <- a.Stop(ctx)
	}()
	stWaitStopping(t, a)

	// A, draining, answers B's requests.
	for _, h := range forA {
		require.NoError(t, h.ctx.Respond(h.m), "Respond while the service drains")
	}
	seen := map[uint32]int{}
	for _, r := range stRecv(t, resultsB, k, "B's responses") {
		require.NoError(t, r.err)
		seen[r.idx]++
	}
	require.Len(t, seen, k)
	require.Empty(t, stopped, "Stop returned with A's requests unanswered")

	// B answers A's requests: A's drain completes.
	for _, h := range forB {
		require.NoError(t, h.ctx.Respond(h.m))
	}
	seen = map[uint32]int{}
	for _, r := range stRecv(t, resultsA, k, "A's responses") {
		require.NoError(t, r.err, "a request of the draining service failed")
		seen[r.idx]++
	}
	require.Len(t, seen, k)
	require.NoError(t, stRecv(t, stopped, 1, "A.Stop")[0])
	require.ErrorIs(t, a.Send(b.Addr().String(), testmsg.New(0, 1), 0, nil), ipc.ErrServiceStopped)

	// Quiet: no second completion anywhere.
	require.NoError(t, b.Stop(context.Background()))
	require.Empty(t, resultsA, "a request of A completed twice")
	require.Empty(t, resultsB, "a request of B completed twice")
}

// TestStopContextEndsDrain: when Stop's context ends before the drain,
// Stop returns the context's error and what is still pending fails with
// ErrConnection caused by ErrServiceStopped, once. The context is canceled
// by the test, not by a timer.
func TestStopContextEndsDrain(t *testing.T) {
	held := make(chan stHeld, 1)
	server := startService(t, ipc.Config{Protocol: stHoldProto(held), Listen: "127.0.0.1:0"})
	client := startService(t, ipc.Config{Protocol: plClientProto()})
	results := make(chan error, 2)
	require.NoError(t, ipc.SendRequest(client, server.Addr().String(), testmsg.New(0, 10), 0,
		func(req, resp *testmsg.Message, err error) { results <- err }))
	h := stRecv(t, held, 1, "the server to hold the request")[0]
	_ = h

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- client.Stop(ctx) }()
	stWaitStopping(t, client)
	require.Empty(t, stopped, "Stop returned with a request unanswered")
	cancel()
	require.ErrorIs(t, stRecv(t, stopped, 1, "Stop")[0], context.Canceled)
	err := stRecv(t, results, 1, "the request to fail")[0]
	require.ErrorIs(t, err, ipc.ErrConnection)
	require.ErrorIs(t, err, ipc.ErrServiceStopped)
	require.NoError(t, server.Stop(context.Background()))
	require.Empty(t, results, "the request completed twice")
}
