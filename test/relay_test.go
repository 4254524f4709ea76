package test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/clock"
	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// echoed checks a response as the echo of request idx.
func echoed(idx uint32, resp *testmsg.Message, err error) error {
	switch {
	case err != nil:
		return fmt.Errorf("request %d: %w", idx, err)
	case resp == nil || resp.Idx != idx:
		return fmt.Errorf("request %d: bad response %v", idx, resp)
	}
	return testmsg.Verify(resp, relaySizes[int(idx)%len(relaySizes)])
}

// stopAll stops the services in order, each within the deadline.
func stopAll(t *testing.T, svcs ...*ipc.Service) {
	t.Helper()
	for _, s := range svcs {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		require.NoError(t, s.Stop(ctx))
		cancel()
	}
}

// TestRelayBasic ports relay_basic: A sends 40 requests (100 B to 16 MB,
// the sizes twice) to "relay/b", 10 at first and one more per response;
// B echoes each. The relay knows only the register message. Every
// request completes once with its intact echo; B saw each once, OnPeer
// and Relayed; the relay completed every relayed message (40 each way).
func TestRelayBasic(t *testing.T) {
	relayEcho(t, ipc.Config{BufferSize: 16 << 10}, ipc.Config{}, "B", 40, 10)
}

// TestRelayDisabled ports relay_disabled: a service that does not relay
// refuses messages with a relay path; every request fails with
// ErrCanceledByPeer and gets no response.
func TestRelayDisabled(t *testing.T) {
	peer := newEchoPeer()
	server := startService(t, ipc.Config{Protocol: relayProto(t, peer.handle), Listen: "127.0.0.1:0"})
	a := startService(t, ipc.Config{Protocol: relayProto(t, nil)})
	const total = 20
	run := chainRequests(t, a, server.Addr().String()+"/b", relaySizes, total, 10, func(idx uint32, resp *testmsg.Message, err error) error {
		if resp != nil || !errors.Is(err, ipc.ErrCanceledByPeer) {
			return fmt.Errorf("request %d: got %v, %v", idx, resp, err)
		}
		return nil
	})
	stopAll(t, a)
	run.once(t)
	peer.mu.Lock()
	defer peer.mu.Unlock()
	require.Empty(t, peer.received)
}

// TestRelaySplit ports relay_split: request idx (20, one at a time, an
// eighth of relaySizes: 12 B to 2 MB) is answered through the relay by
// (idx%4)+1 responses: intact copies sent with ResponsePart, then the last
// with ResponseLast. The request's callback sees every part, in order, the
// last one last.
func TestRelaySplit(t *testing.T) {
	const total = 20
	splits := func(idx int) int { return idx%4 + 1 }
	size := func(idx int) int { return relaySizes[idx] / 8 }
	relay := startRelay(t, ipc.Config{BufferSize: 16 << 10})
	raddr := relay.Addr().String()
	peer := newEchoPeer()
	peer.hook = func(ctx ipc.Context, m *testmsg.Message) bool {
		n := splits(int(m.Idx))
		for k := 0; k < n; k++ {
			resp := &testmsg.Message{Idx: m.Idx, Str: m.Str, Meta: m.Meta}
			flags := ipc.ResponsePart
			if k == n-1 {
				resp.Flags, flags = 1, ipc.ResponseLast
			}
			if err := ctx.RespondFlags(resp, flags, nil); err != nil {
				panic(err)
			}
		}
		return false
	}
	b := startService(t, ipc.Config{Protocol: relayProto(t, peer.handle)})
	join(t, b, raddr, "b")
	a := startService(t, ipc.Config{Protocol: relayProto(t, nil)})

	var (
		mu    sync.Mutex
		calls = make([]int, total)
		errs  []error
		done  = make(chan struct{})
		send  func(idx int)
	)
	cb := func(req, resp *testmsg.Message, err error) {
		idx := int(req.Idx)
		mu.Lock()
		defer mu.Unlock()
		calls[idx]++
		n := splits(idx)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("request %d: %w", idx, err))
		case resp == nil || resp.Idx != req.Idx:
			errs = append(errs, fmt.Errorf("request %d: wrong response", idx))
		case (calls[idx] == n) != (resp.Flags == 1):
			errs = append(errs, fmt.Errorf("request %d: response %d of %d has flags %d", idx, calls[idx], n, resp.Flags))
		default:
			if err := testmsg.Verify(resp, size(idx)); err != nil {
				errs = append(errs, err)
			}
		}
		if calls[idx] < n && err == nil {
			return
		}
		if idx+1 < total {
			send(idx + 1)
		} else {
			close(done)
		}
	}
	send = func(idx int) {
		if err := ipc.SendRequest(a, raddr+"/b", testmsg.New(idx, size(idx)), 0, cb); err != nil {
			errs = append(errs, err)
		}
	}
	mu.Lock()
	send(0)
	mu.Unlock()
	wait(t, done, "split responses")
	stopAll(t, a, b, relay)
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, errs)
	for idx, n := range calls {
		require.Equal(t, splits(idx), n, "responses to %d", idx)
	}
	require.Zero(t, relay.Stats().InFlight)
}

// TestRelayNames registers 1,000 names on one relay (ten peers, a hundred
// names each, registered in mixed case) and sends one request to each name
// in lower case: each arrives once, at the peer that registered it. Then:
// a newer registration replaces an older one; a message to a name not yet
// registered waits in a placeholder and is delivered on registration.
func TestRelayNames(t *testing.T) {
	const peers, names = 10, 100
	relay := startRelay(t, ipc.Config{})
	raddr := relay.Addr().String()
	var (
		mu  sync.Mutex
		got = map[uint32]int{} // receipts by index, value: peer+1
		bad []error
	)
	peerAt := func(p int) func(ipc.Context, *testmsg.Message) {
		return func(ctx ipc.Context, m *testmsg.Message) {
			mu.Lock()
			if got[m.Idx] != 0 {
				bad = append(bad, fmt.Errorf("request %d arrived twice", m.Idx))
			}
			got[m.Idx] = p + 1
			mu.Unlock()
			_ = ctx.Respond(m)
		}
	}
	svcs := make([]*ipc.Service, peers+2)
	for p := range peers + 2 {
		svcs[p] = startService(t, ipc.Config{Protocol: relayProto(t, peerAt(p))})
	}
	var wg sync.WaitGroup
	for p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range names {
				join(t, svcs[p], raddr, fmt.Sprintf("Peer%d-Name%d", p, k))
			}
		}()
	}
	wg.Wait()
	a := startService(t, ipc.Config{Protocol: relayProto(t, nil)})
	results := make(chan error, peers*names)
	for i := range peers * names {
		dest := fmt.Sprintf("%s/peer%d-name%d", raddr, i/names, i%names)
		require.NoError(t, ipc.SendRequest(a, dest, testmsg.New(i, 100), 0, func(_, resp *testmsg.Message, err error) {
			results <- err
		}))
	}
	for range peers * names {
		require.NoError(t, <-results)
	}
	mu.Lock()
	require.Empty(t, bad)
	require.Len(t, got, peers*names)
	for idx, p := range got {
		require.Equal(t, int(idx)/names+1, p, "request %d", idx)
	}
	mu.Unlock()

	// A newer registration replaces the older one.
	x, y := svcs[peers], svcs[peers+1]
	join(t, x, raddr, "dup")
	join(t, y, raddr, "DUP")
	request := func(dest string, idx int) {
		t.Helper()
		done := make(chan struct{})
		var err error
		require.NoError(t, ipc.SendRequest(a, raddr+"/"+dest, testmsg.New(idx, 100), 0, func(_, _ *testmsg.Message, e error) {
			err = e
			close(done)
		}))
		wait(t, done, "request to "+dest)
		require.NoError(t, err)
	}
	request("dup", 5000)
	mu.Lock()
	require.Equal(t, peers+2, got[5000], "the newer registration gets it")
	mu.Unlock()

	// A message to a name not registered yet waits for it.
	done := make(chan error, 1)
	require.NoError(t, ipc.SendRequest(a, raddr+"/late", testmsg.New(6000, 100), 0, func(_, _ *testmsg.Message, err error) {
		done <- err
	}))
	join(t, x, raddr, "LATE")
	require.NoError(t, <-done)
	mu.Lock()
	require.Equal(t, peers+1, got[6000])
	mu.Unlock()
}

// TestRelayWaitTimeout: a message to a name nobody registers fails, after
// RelayConfig.WaitTimeout on the relay's clock, with ErrCanceledByPeer on
// its sender; the relay's stub fails with ErrRelayNoRoute.
func TestRelayWaitTimeout(t *testing.T) {
	m := clock.NewManual(time.Unix(1000, 0))
	relay := startRelay(t, ipc.Config{Clock: m, Relay: ipc.RelayConfig{WaitTimeout: 5 * time.Second}})
	raddr := relay.Addr().String()
	a := startService(t, ipc.Config{Protocol: relayProto(t, nil)})
	join(t, a, raddr, "a") // the connection is up: its timers are armed
	before := m.Pending()
	done := make(chan error, 1)
	require.NoError(t, ipc.SendRequest(a, raddr+"/nobody", testmsg.New(1, 100), 0, func(_, _ *testmsg.Message, err error) {
		done <- err
	}))
	require.True(t, m.WaitPending(before+1, nil), "placeholder timer")
	m.Advance(4 * time.Second)
	select {
	case err := <-done:
		t.Fatalf("completed before the timeout: %v", err)
	default:
	}
	m.Advance(time.Second)
	err := <-done
	require.ErrorIs(t, err, ipc.ErrCanceledByPeer)
	stopAll(t, a, relay)
	require.EqualValues(t, 1, relay.Stats().Completions.Canceled)
}

// TestRelayChain sends 14 requests (100 B to 4 MB) through two relays:
// A → R1 → R2 → B, addressed "R1/r2/b" (R2 registered itself on R1 as
// "r2", B on R2 as "b").
func TestRelayChain(t *testing.T) {
	r1 := startRelay(t, ipc.Config{BufferSize: 16 << 10})
	r2 := startRelay(t, ipc.Config{BufferSize: 16 << 10})
	join(t, r2, r1.Addr().String(), "r2")
	peer := newEchoPeer()
	b := startService(t, ipc.Config{Protocol: relayProto(t, peer.handle)})
	join(t, b, r2.Addr().String(), "b")
	a := startService(t, ipc.Config{Protocol: relayProto(t, nil)})
	const total = 14
	run := chainRequests(t, a, r1.Addr().String()+"/r2/b", relaySizes, total, 5, echoed)
	stopAll(t, a, b, r2, r1)
	run.once(t)
	peer.once(t, total)
	require.Zero(t, r1.Stats().InFlight)
	require.Zero(t, r2.Stats().InFlight)
}
