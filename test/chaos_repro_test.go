package test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// Minimal reproductions of the engine bugs TestChaos found. Each passes on
// a correct engine whatever the timing, and fails with high probability
// on the bug it names.

// TestChaosCancelCauseRepro: a message canceled by its context completes
// with an error matching ErrCanceled and context.Cause(ctx) (SendContext's
// contract). Found by TestChaos: when the connection owning the message
// closes after the cancel was asked but before it reached the connection's
// loop (cancelAsked), the close fails the message with ErrCanceled and no
// cause (pool.connClosed and the accepted branch of conn.onClose call
// fail(ErrCanceled, nil)), so errors.Is(err, context.DeadlineExceeded) is
// false for a message whose deadline ended.
//
// Each round: 64 idempotent requests wait on a server that never answers;
// the test cancels all their contexts (one cause) and closes the client's
// connection at once. Every request must complete once, with ErrCanceled
// and the round's cause.
func TestChaosCancelCauseRepro(t *testing.T) {
	const rounds, perRound = 20, 64
	var arrived atomic.Int64
	arrivedSig := newPLSignal()
	server := startService(t, ipc.Config{
		Protocol: chaosProto(func(ctx ipc.Context, m *chaosMsg) {
			arrived.Add(1)
			arrivedSig.notify()
		}),
		Listen: "127.0.0.1:0",
	})
	var (
		mu   sync.Mutex
		last ipc.Conn // the connection opened last: the live one
	)
	client := startService(t, ipc.Config{
		Protocol:     chaosProto(nil),
		ReconnectMin: time.Millisecond,
		ReconnectMax: 5 * time.Millisecond,
		ConnectionStart: func(ci ipc.ConnInfo) {
			mu.Lock()
			last = ci.Conn
			mu.Unlock()
		},
	})
	addr := server.Addr().String()

	type result struct {
		id  uint64
		err error
	}
	var lost int
	for round := range rounds {
		cause := fmt.Errorf("round %d canceled", round)
		ctx, cancel := context.WithCancelCause(context.Background())
		results := make(chan result, 2*perRound)
		before := arrived.Load()
		for i := range perRound {
			id := uint64(round*perRound + i)
			_, err := ipc.SendRequestContext(ctx, client, addr, &chaosMsg{ID: id}, ipc.Idempotent,
				func(req, resp *chaosMsg, err error) { results <- result{req.ID, err} })
			require.NoError(t, err)
		}
		// All of them are written and waiting for their responses.
		arrivedSig.waitFor(t, "the round's requests at the server", func() bool {
			return arrived.Load() >= before+perRound
		})
		mu.Lock()
		c := last
		mu.Unlock()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); cancel(cause) }()
		require.NoError(t, c.Close())
		wg.Wait()
		seen := map[uint64]int{}
		for range perRound {
			var r result
			select {
			case r = <-results:
			case <-time.After(chaosCancelWait):
				// A cancel lost to the close (issue 7, defect 1) leaves
				// the request resent, waiting for an answer that never
				// comes.
				t.Fatalf("round %d: %d of %d canceled requests still pending after %v (cancel lost to the close: issue 7 defect 1)",
					round, perRound-len(seen), perRound, chaosCancelWait)
			}
			seen[r.id]++
			require.ErrorIs(t, r.err, ipc.ErrCanceled, "request %d", r.id)
			if !errors.Is(r.err, cause) {
				if lost++; lost <= 5 {
					t.Errorf("round %d: request %d completed with %v: the context's cause is lost", round, r.id, r.err)
				}
			}
		}
		require.Len(t, seen, perRound)
		cancel(nil)
	}
	require.Zero(t, lost, "completions without their context's cause")
}

// chaosCancelWait bounds the wait for canceled requests to complete, far
// above what a correct engine needs even under -race on a loaded machine.
const chaosCancelWait = 20 * time.Second

// chaosProto registers chaosMsg (id 1) with handler h (may be nil).
func chaosProto(h func(ipc.Context, *chaosMsg)) *ipc.Protocol {
	p := ipc.NewProtocol()
	ipc.MustRegister(p, 1, h)
	return p
}

// TestChaosSyncActivationRepro (issue 7, defect 5, found by TestChaos with
// StartPassive): synchronous messages reach the server in send order even
// when an older passive connection is activated while the main connection
// still holds synchronous messages. Two passive connections, A (older) and
// B; B is activated first and becomes the main connection; it takes
// synchronous message 1 (8 MB, so that it is still being written) and 2..4
// (waiting behind it); then A is activated and message 5 is sent. The
// server must receive 1, 2, 3, 4, 5.
func TestChaosSyncActivationRepro(t *testing.T) {
	var (
		smu   sync.Mutex
		order []uint64
	)
	got := newPLSignal()
	server := startService(t, ipc.Config{
		Protocol: chaosProto(func(ctx ipc.Context, m *chaosMsg) {
			smu.Lock()
			order = append(order, m.Sync)
			smu.Unlock()
			got.notify()
		}),
		Listen: "127.0.0.1:0",
	})
	ev := newSemEvents()
	var (
		cmu   sync.Mutex
		conns []ipc.Conn // in order of opening
	)
	client := startService(t, ipc.Config{
		Protocol:             chaosProto(nil),
		MaxActiveConnections: 2,
		StartPassive:         true,
		PoolEvent:            ev.add,
		ConnectionStart: func(ci ipc.ConnInfo) {
			cmu.Lock()
			conns = append(conns, ci.Conn)
			cmu.Unlock()
		},
	})
	addr := server.Addr().String()
	require.NoError(t, client.CreatePool(addr, ipc.PoolOptions{MinConnections: 2}))
	ev.waitCount(t, ipc.PoolConnectionStart, 2)
	cmu.Lock()
	a, b := conns[0], conns[1]
	cmu.Unlock()

	require.NoError(t, b.Activate())
	ev.waitCount(t, ipc.PoolConnectionActivate, 1)
	sent := make(chan error, 5)
	send := func(n uint64, size int) {
		require.NoError(t, client.Send(addr, &chaosMsg{ID: n, Sync: n, Pad: make([]byte, size)}, ipc.Synchronous,
			func(err error) { sent <- err }))
	}
	send(1, 8<<20)
	for n := uint64(2); n <= 4; n++ {
		send(n, 10)
	}
	require.NoError(t, a.Activate())
	ev.waitCount(t, ipc.PoolConnectionActivate, 2)
	send(5, 10)
	for range 5 {
		require.NoError(t, semAwait(t, sent, "the synchronous messages written"))
	}
	got.waitFor(t, "five arrivals", func() bool {
		smu.Lock()
		defer smu.Unlock()
		return len(order) == 5
	})
	smu.Lock()
	defer smu.Unlock()
	require.Equal(t, []uint64{1, 2, 3, 4, 5}, order, "server arrival order of synchronous messages")
}

// TestChaosCanceledWaitRepro (issue 7, defect 2, found by the long
// TestChaos run: on healed connections the senders stalled for good):
// requests canceled while they wait for a response that never comes must
// not keep their writer slots forever. The client's writer has 2+4 slots;
// one at a time, 12 requests to a server that never answers are written,
// canceled, and complete with ErrCanceled; each next request must still
// reach the server.
func TestChaosCanceledWaitRepro(t *testing.T) {
	const total = 12
	arrived := make(chan uint64, total)
	server := startService(t, ipc.Config{
		Protocol: chaosProto(func(ctx ipc.Context, m *chaosMsg) { arrived <- m.ID }),
		Listen:   "127.0.0.1:0",
	})
	client := startService(t, ipc.Config{
		Protocol:        chaosProto(nil),
		MaxMultiplex:    2,
		MaxResponseWait: 4,
	})
	addr := server.Addr().String()
	for i := range uint64(total) {
		done := make(chan error, 2)
		id, err := ipc.SendRequestContext(context.Background(), client, addr, &chaosMsg{ID: i}, 0,
			func(req, resp *chaosMsg, err error) { done <- err })
		require.NoError(t, err)
		select {
		case got := <-arrived:
			require.Equal(t, i, got)
		case <-time.After(chaosCancelWait):
			t.Fatalf("request %d never reached the server: the writer's slots are held by the %d requests canceled before it", i, i)
		}
		require.NoError(t, client.Cancel(id))
		require.ErrorIs(t, semAwait(t, done, "the canceled request"), ipc.ErrCanceled)
	}
}
