package ipc_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/ipc"
)

// TestCancelRacesCompletionAndReuse: a cancel that races its message's
// completion, or comes long after it, never reaches the message that
// reuses the stub (cancel.go, "Generations"), and every message completes
// exactly once.
//
// Each worker sends one message at a time, so that the next one takes the
// stub the last one just gave back (sync.Pool's per-P cache), in six kinds
// by turn: victims, each canceled from another goroutine racing its
// completion (a request canceled through its context, a request and a
// one-way SendContext canceled with Cancel), and protected messages,
// never canceled, which must succeed (a request with a MessageID, a
// SendRequest without one, a one-way SendContext). A third
// goroutine cancels the last 64 completed messages of all workers again
// and again: each such Cancel must return ErrUnknownMessage, and none may
// cancel a protected request. Every completion is counted per message;
// after the client has stopped (no completion can follow), each message
// counts exactly one and the service's completions add up.
func TestCancelRacesCompletionAndReuse(t *testing.T) {
	server, client := callPair(t, func(ctx ipc.Context, m *callMsg) {
		if ctx.IsRequest() {
			_ = ctx.Respond(m)
		}
	}, ipc.Config{})
	addr := server.Addr().String()
	const workers, perWorker, kinds = 4, 600, 6
	total := workers * perWorker

	var (
		counts [workers * perWorker]atomic.Int32
		mu     sync.Mutex
		bad    []string // what went wrong, recorded off the test goroutine
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(bad) < 20 {
			bad = append(bad, fmt.Sprintf(format, args...))
		}
	}
	victim := func(seq uint64) bool { k := seq % kinds; return k == 0 || k == 2 || k == 5 }
	dones := make([]chan struct{}, workers)
	for w := range dones {
		dones[w] = make(chan struct{}, perWorker) // never blocks a loop, duplicates included
	}
	record := func(seq uint64, resp *callMsg, err error) { // on an event loop: records only
		if n := counts[seq].Add(1); n != 1 {
			fail("message %d completed %d times", seq, n)
		}
		switch {
		case err == nil && resp != nil && resp.N != seq:
			fail("message %d: response %d", seq, resp.N)
		case err != nil && !victim(seq):
			fail("protected message %d (kind %d): %v", seq, seq%kinds, err)
		case err != nil && !errors.Is(err, ipc.ErrCanceled):
			fail("victim %d: %v", seq, err)
		}
		dones[seq/perWorker] <- struct{}{}
	}
	cb := func(req, resp *callMsg, err error) { record(req.N, resp, err) }

	stale := make(chan ipc.MessageID, 256)
	staleDone := make(chan struct{})
	go func() { // cancels completed messages again and again
		defer close(staleDone)
		var ring [64]ipc.MessageID
		n := 0
		for id := range stale {
			ring[n%len(ring)] = id
			n++
			for _, old := range ring[:min(n, len(ring))] {
				if err := client.Cancel(old); !errors.Is(err, ipc.ErrUnknownMessage) {
					fail("late Cancel of a completed message: %v", err)
				}
			}
		}
	}()

	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			racer := make(chan func(), 1)
			racerDone := make(chan struct{})
			go func() { // fires each victim's cancel, racing its echo
				defer close(racerDone)
				for f := range racer {
					f()
				}
			}()
			defer func() { close(racer); <-racerDone }()
			for i := range perWorker {
				seq := uint64(w*perWorker + i)
				kind := seq % kinds
				ctx, cancel := context.Background(), context.CancelFunc(nil)
				if kind == 0 {
					ctx, cancel = context.WithCancel(ctx)
				}
				var id ipc.MessageID
				var err error
				switch kind {
				case 3:
					err = ipc.SendRequest(client, addr, &callMsg{N: seq}, 0, cb)
				case 4, 5: // one way
					id, err = client.SendContext(ctx, addr, &callMsg{N: seq}, 0, func(err error) { record(seq, nil, err) })
				default:
					id, err = ipc.SendRequestContext(ctx, client, addr, &callMsg{N: seq}, 0, cb)
				}
				if err != nil {
					if cancel != nil {
						cancel()
					}
					fail("send %d: %v", seq, err)
					return
				}
				switch kind {
				case 0:
					racer <- cancel
				case 2, 5:
					racer <- func() {
						if err := client.Cancel(id); err != nil && !errors.Is(err, ipc.ErrUnknownMessage) {
							fail("Cancel %d: %v", seq, err)
						}
					}
				}
				<-dones[w] // a hang is caught by go test -timeout
				if cancel != nil {
					cancel()
				}
				if id.Valid() {
					stale <- id
				}
			}
		}()
	}
	wg.Wait()
	close(stale)
	<-staleDone

	// Quiet: once Stop has returned no completion can follow.
	require.NoError(t, client.Stop(context.Background()))
	mu.Lock()
	require.Empty(t, bad)
	mu.Unlock()
	canceled := 0
	for seq := range counts {
		require.EqualValues(t, 1, counts[seq].Load(), "completions of message %d", seq)
		if victim(uint64(seq)) {
			canceled++
		}
	}
	st := client.Stats()
	require.Zero(t, st.InFlight)
	require.EqualValues(t, total, st.Completions.OK+st.Completions.Canceled, "completions: %+v", st.Completions)
	t.Logf("%d messages, %d canceled (of %d victims)", total, st.Completions.Canceled, canceled)
}
