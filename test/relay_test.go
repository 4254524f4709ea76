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

// relayRun is a chained echo through a relay: each completion sends the
// next request until total completed; completions are counted per index.
type relayRun struct {
	mu     sync.Mutex
	sent   int
	total  int
	counts map[uint32]int
	errs   map[uint32]error
	done   chan struct{}
}

// chainRelay sends total requests (sizes from relaySizes by index) from
// client to dest, initial at once and one more per completion, and waits
// until every index completed.
func chainRelay(t *testing.T, client *ipc.Service, dest string, total, initial int, check func(idx uint32, resp *testmsg.Message, err error) error) *relayRun {
	t.Helper()
	r := &relayRun{total: total, counts: map[uint32]int{}, errs: map[uint32]error{}, done: make(chan struct{})}
	var send func()
	cb := func(req, resp *testmsg.Message, err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.counts[req.Idx]++
		if e := check(req.Idx, resp, err); e != nil {
			r.errs[req.Idx] = e
		}
		if r.sent < total {
			send()
		}
		if len(r.counts) == total && r.counts[req.Idx] == 1 {
			close(r.done)
		}
	}
	send = func() {
		idx := r.sent
		r.sent++
		if err := ipc.SendRequest(client, dest, testmsg.New(idx, relaySizes[idx%len(relaySizes)]), 0, cb); err != nil {
			r.errs[uint32(idx)] = fmt.Errorf("send %d: %w", idx, err)
		}
	}
	r.mu.Lock()
	for range initial {
		send()
	}
	r.mu.Unlock()
	wait(t, r.done, fmt.Sprintf("%d relayed requests", total))
	return r
}

// once checks, once the sender has stopped, that every request completed
// exactly once and that none failed its check.
func (r *relayRun) once(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Empty(t, r.errs)
	for i := range r.total {
		require.Equal(t, 1, r.counts[uint32(i)], "completions of %d", i)
	}
	require.Len(t, r.counts, r.total)
}

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
	relay := startRelay(t, ipc.Config{BufferSize: 16 << 10})
	raddr := relay.Addr().String()
	peer := newEchoPeer()
	b := startService(t, ipc.Config{Protocol: relayProto(t, peer.handle)})
	join(t, b, raddr, "b")
	a := startService(t, ipc.Config{Protocol: relayProto(t, nil)})

	const total = 40
	run := chainRelay(t, a, raddr+"/B", total, 10, echoed)
	stopAll(t, a, b)
	run.once(t)
	peer.mu.Lock()
	defer peer.mu.Unlock()
	require.Empty(t, peer.errs)
	for i := range total {
		require.Equal(t, 1, peer.received[uint32(i)], "receipts of %d", i)
		require.Equal(t, 1, peer.answered[uint32(i)], "answers of %d", i)
	}
	st := relay.Stats()
	require.Equal(t, uint64(2*total+1), st.Completions.OK, "relayed messages completed, and the registration answer")
	require.Zero(t, st.InFlight)
}

// TestRelayDisabled ports relay_disabled: a service that does not relay
// refuses messages with a relay path; every request fails with
// ErrCanceledByPeer and gets no response.
func TestRelayDisabled(t *testing.T) {
	peer := newEchoPeer()
	server := startService(t, ipc.Config{Protocol: relayProto(t, peer.handle), Listen: "127.0.0.1:0"})
	a := startService(t, ipc.Config{Protocol: relayProto(t, nil)})
	const total = 20
	run := chainRelay(t, a, server.Addr().String()+"/b", total, 10, func(idx uint32, resp *testmsg.Message, err error) error {
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
