package test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// Ports of relay_cancel_request, relay_cancel_response, relay_close_request
// and relay_close_response: a peer cancels, or force-closes a pool, while a
// relayed message is being decoded; every message on every node completes
// exactly once.

// flagMsg is the payload of the cancel and close tests: its decoding calls
// flagHook as soon as the index is known, before the bulk of the message.
type flagMsg struct {
	Idx  uint32
	Resp bool // set on the echo
	Str  []byte
}

// flagHook, when set, runs on the decoding loop when a flagMsg begins.
var flagHook atomic.Pointer[func(idx uint32, resp bool)]

func (m *flagMsg) Serde(v *serde.Visitor) {
	v.Uint32(&m.Idx)
	v.Bool(&m.Resp)
	if v.Decoding() {
		v.Then(m)
	}
	v.Bytes(&m.Str)
}

// Continue implements serde.Continuation: the index is decoded.
func (m *flagMsg) Continue(*serde.Visitor) {
	if h := flagHook.Load(); h != nil {
		(*h)(m.Idx, m.Resp)
	}
}

func setFlagHook(t *testing.T, h func(idx uint32, resp bool)) {
	flagHook.Store(&h)
	t.Cleanup(func() { flagHook.Store(nil) })
}

// flagProto is a peer protocol of flagMsg (id 1) and registerMsg.
func flagProto(t testing.TB, h func(ipc.Context, *flagMsg)) *ipc.Protocol {
	t.Helper()
	p := ipc.NewProtocol()
	require.NoError(t, ipc.Register(p, relayMsgID, h))
	require.NoError(t, ipc.Register[registerMsg](p, relayRegisterID, nil))
	return p
}

// cancelSizes is relay_cancel_request's table (the 20–80 MB entries
// divided by ten); the flagged indexes are canceled.
var cancelSizes = []int{100, 10000000, 200, 400, 800, 1000, 2000, 4000, 8000, 16000, 32000, 64000,
	128000, 256000, 512000, 10240000, 2048000, 4096000, 8192000, 16384000}

// cancelWorld is A —relay→ B with flagMsg, B echoing (or not).
type cancelWorld struct {
	relay, a, b *ipc.Service
	dest        string

	mu  sync.Mutex
	ids map[uint32]ipc.MessageID
	// early holds the requests canceled before send stored their id: the
	// cancel hook may run (on B, two hops away) before SendRequestContext
	// has returned the id to the goroutine that sent it.
	early    map[uint32]bool
	received map[uint32]int
	counts   map[uint32]int
	results  map[uint32]error // nil: intact response
	done     chan struct{}
	total    int
}

func newCancelWorld(t *testing.T, echo bool) *cancelWorld {
	w := &cancelWorld{ids: map[uint32]ipc.MessageID{}, early: map[uint32]bool{}, received: map[uint32]int{}, counts: map[uint32]int{},
		results: map[uint32]error{}, done: make(chan struct{})}
	w.relay = startRelay(t, ipc.Config{BufferSize: 16 << 10})
	raddr := w.relay.Addr().String()
	w.b = startService(t, ipc.Config{Protocol: flagProto(t, func(ctx ipc.Context, m *flagMsg) {
		w.mu.Lock()
		w.received[m.Idx]++
		w.mu.Unlock()
		if echo {
			m.Resp = true
			_ = ctx.Respond(m)
		}
	})})
	join(t, w.b, raddr, "b")
	w.a = startService(t, ipc.Config{Protocol: flagProto(t, nil)})
	w.dest = raddr + "/b"
	return w
}

// send sends request idx of size n from A; its completion is recorded and
// then next (if not nil) runs. It may run on an event loop (from a
// completion): a failed send is recorded as the request's result.
func (w *cancelWorld) send(t *testing.T, idx, n int, next func()) {
	m := &flagMsg{Idx: uint32(idx), Str: testmsg.Payload(idx, n)}
	complete := func(req, resp *flagMsg, err error) {
		w.mu.Lock()
		w.counts[req.Idx]++
		switch {
		case err != nil:
			w.results[req.Idx] = err
		case resp == nil || resp.Idx != req.Idx || !resp.Resp:
			w.results[req.Idx] = fmt.Errorf("request %d: bad response", req.Idx)
		default:
			w.results[req.Idx] = testmsg.Check(int(req.Idx), n, resp.Str)
		}
		last := len(w.counts) == w.total && w.counts[req.Idx] == 1
		w.mu.Unlock()
		if next != nil {
			next()
		}
		if last {
			close(w.done)
		}
	}
	id, err := ipc.SendRequestContext(t.Context(), w.a, w.dest, m, 0, complete)
	if err != nil {
		complete(m, nil, fmt.Errorf("request %d not sent: %w", idx, err))
		return
	}
	w.mu.Lock()
	w.ids[uint32(idx)] = id
	early := w.early[uint32(idx)]
	w.mu.Unlock()
	if early {
		_ = w.a.Cancel(id)
	}
}

// cancel cancels A's request idx (from a decoding hook), or has send
// cancel it as soon as it knows its id.
func (w *cancelWorld) cancel(idx uint32) {
	w.mu.Lock()
	id, ok := w.ids[idx]
	if !ok {
		w.early[idx] = true
	}
	w.mu.Unlock()
	if ok {
		_ = w.a.Cancel(id)
	}
}

// quiet stops every node, then checks that each request completed once
// and that nothing is left in flight anywhere.
func (w *cancelWorld) quiet(t *testing.T) {
	stopAll(t, w.a, w.b, w.relay)
	w.mu.Lock()
	defer w.mu.Unlock()
	require.Len(t, w.counts, w.total)
	for idx, n := range w.counts {
		require.Equal(t, 1, n, "completions of %d", idx)
	}
	for _, s := range []*ipc.Service{w.a, w.b, w.relay} {
		require.Zero(t, s.Stats().InFlight)
	}
}

// runRelayCancel chains 40 requests (initial at first, one more per
// completion) and cancels the flagged ones when the side named by onResp
// begins decoding them (the request on B, or the response on A).
func runRelayCancel(t *testing.T, sizes []int, flagged map[int]bool, initial int, onResp bool) {
	w := newCancelWorld(t, true)
	w.total = 2 * len(sizes)
	setFlagHook(t, func(idx uint32, resp bool) {
		if resp == onResp && flagged[int(idx)%len(sizes)] {
			w.cancel(idx)
		}
	})
	var (
		mu   sync.Mutex
		sent int
	)
	var next func()
	next = func() {
		mu.Lock()
		idx := sent
		sent++
		mu.Unlock()
		if idx < w.total {
			w.send(t, idx, sizes[idx%len(sizes)], next)
		}
	}
	for range initial {
		next()
	}
	wait(t, w.done, "every request")
	w.quiet(t)
	for idx, err := range w.results {
		if flagged[int(idx)%len(sizes)] {
			require.ErrorIs(t, err, ipc.ErrCanceled, "flagged request %d", idx)
		} else {
			require.NoError(t, err, "request %d", idx)
		}
	}
}

// TestRelayCancelRequest ports relay_cancel_request: B cancels A's
// flagged requests (through A's service) as soon as it begins decoding
// them; they fail with ErrCanceled, the others are echoed intact.
func TestRelayCancelRequest(t *testing.T) {
	runRelayCancel(t, cancelSizes, map[int]bool{1: true, 15: true, 17: true, 19: true}, 10, false)
}

// TestRelayCancelResponse ports relay_cancel_response: A cancels its
// flagged requests while decoding their responses.
func TestRelayCancelResponse(t *testing.T) {
	sizes := append([]int{cancelSizes[1], cancelSizes[0]}, cancelSizes[2:]...)
	runRelayCancel(t, sizes, map[int]bool{0: true, 15: true, 17: true, 19: true}, 4, true)
}

// TestRelayCloseRequest ports relay_close_request: B does not answer;
// while it decodes the flagged request it force-closes A's pool. All four
// requests fail on A, the close callback runs once, and nothing is left in
// flight on any node.
func TestRelayCloseRequest(t *testing.T) {
	w := newCancelWorld(t, false)
	sizes := []int{8000000, 8024000, 8096000, 1638400}
	w.total = len(sizes)
	var closes atomic.Int32
	closed := make(chan struct{})
	raddr := w.relay.Addr().String()
	var once sync.Once
	setFlagHook(t, func(idx uint32, resp bool) {
		if idx == 3 && !resp {
			once.Do(func() {
				go func() {
					_ = w.a.AbortPool(raddr, func() {
						if closes.Add(1) == 1 {
							close(closed)
						}
					})
				}()
			})
		}
	})
	for i, n := range sizes {
		w.send(t, i, n, nil)
	}
	wait(t, w.done, "every request")
	wait(t, closed, "the pool's close")
	w.quiet(t)
	require.EqualValues(t, 1, closes.Load())
	for idx, err := range w.results {
		require.Error(t, err, "request %d", idx)
	}
}

// TestRelayCloseResponse ports relay_close_response: B echoes; A
// force-closes its pool once all four responses are being decoded. Each
// request either gets its intact response or fails; at least one fails.
func TestRelayCloseResponse(t *testing.T) {
	w := newCancelWorld(t, true)
	sizes := []int{8100000, 6124000, 4196000, 2138400}
	w.total = len(sizes)
	raddr := w.relay.Addr().String()
	var (
		mu      sync.Mutex
		started = map[uint32]bool{}
	)
	setFlagHook(t, func(idx uint32, resp bool) {
		if !resp {
			return
		}
		mu.Lock()
		started[idx] = true
		all := len(started) == len(sizes)
		mu.Unlock()
		if all {
			go func() { _ = w.a.AbortPool(raddr, nil) }()
		}
	})
	for i, n := range sizes {
		w.send(t, i, n, nil)
	}
	wait(t, w.done, "every request")
	w.quiet(t)
	failed := 0
	for _, err := range w.results {
		if err != nil {
			failed++
			require.True(t, errors.Is(err, ipc.ErrConnection) || errors.Is(err, ipc.ErrCanceled), "%v", err)
		}
	}
	require.Positive(t, failed)
}

// TestRelayStopped stops the relay node (at once: its context already
// ended) while B decodes a relayed request and others are under way: the
// large requests fail on A (ErrConnection or ErrCanceledByPeer), and every
// message on every node completes once.
func TestRelayStopped(t *testing.T) {
	w := newCancelWorld(t, true)
	sizes := []int{4000000, 100, 2000000, 8000000}
	w.total = len(sizes)
	stopped := make(chan error, 1)
	var once sync.Once
	setFlagHook(t, func(idx uint32, resp bool) {
		if idx == 3 && !resp {
			once.Do(func() {
				go func() {
					ctx, cancel := context.WithCancel(context.Background())
					cancel()
					stopped <- w.relay.Stop(ctx)
				}()
			})
		}
	})
	for i, n := range sizes {
		w.send(t, i, n, nil)
	}
	wait(t, w.done, "every request")
	require.ErrorIs(t, <-stopped, context.Canceled)
	w.quiet(t)
	for idx, err := range w.results {
		// The small one may have been answered first; the others fail as
		// their connection to the relay closes, or as the relay tells A
		// their destination's connection closed (CancelRequest).
		if idx != 1 {
			require.True(t, errors.Is(err, ipc.ErrConnection) || errors.Is(err, ipc.ErrCanceledByPeer), "request %d: %v", idx, err)
		}
	}
}
