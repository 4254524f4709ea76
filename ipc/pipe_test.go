package ipc

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/reactor"
	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// TestPipeInterleaveDetection checks the signals that shorten a
// connection's pipe (pipe.go), with a writer and a reader joined by a
// buffer and no sockets: a large message alone sets neither; a small
// message that finishes while the large one is under way sets the
// writer's signal, and its arrival while the large one is still arriving
// sets the reader's.
func TestPipeInterleaveDetection(t *testing.T) {
	cfg := testConfig(t, nil)
	w := newWriter(cfg)
	ev := &pipeEvents{t: t}
	r := newReader(cfg, ev)
	buf := make([]byte, cfg.BufferSize)
	step := func() {
		t.Helper()
		n, err := w.fill(buf)
		require.NoError(t, err)
		require.Positive(t, n)
		used, err := r.feed(buf[:n])
		require.NoError(t, err)
		require.Equal(t, n, used)
	}
	require.True(t, w.enqueue(&msgStub{msg: testmsg.New(0, 1<<20), ti: testTI, state: OnPeer}))
	for range 20 { // 80 KiB of the large message, nothing else
		step()
	}
	require.False(t, w.interleaved, "a large message alone")
	require.False(t, r.interleaved, "a large message alone")
	require.Equal(t, 1, r.large)

	require.True(t, w.enqueue(&msgStub{msg: testmsg.New(1, 1000), ti: testTI, state: OnPeer}))
	for len(ev.msgs) == 0 {
		step()
	}
	require.True(t, w.interleaved, "a small message beside a large one")
	require.True(t, r.interleaved, "a small message beside a large one")

	w.interleaved, r.interleaved = false, false
	for len(ev.msgs) < 2 {
		step()
	}
	require.NoError(t, testmsg.Verify(ev.msgs[1], 1<<20))
	require.False(t, w.interleaved, "the large message finishing")
	require.False(t, r.interleaved, "the large message finishing")
	require.Zero(t, r.large)

	// A small message alone sets nothing either.
	require.True(t, w.enqueue(&msgStub{msg: testmsg.New(2, 1000), ti: testTI, state: OnPeer}))
	for len(ev.msgs) < 3 {
		step()
	}
	require.False(t, w.interleaved)
	require.False(t, r.interleaved)
}

// TestShortSpan checks the hysteresis of one end of the pipe: short at the
// first interleaving, long again only after pipeShortSpan bytes without
// another, each change reported once.
func TestShortSpan(t *testing.T) {
	var s shortSpan
	require.False(t, s.update(false, 1<<20), "long stays long")
	require.True(t, s.update(true, 100), "first interleaving")
	require.True(t, s.on)
	require.False(t, s.update(true, 100), "already short")
	require.False(t, s.update(false, pipeShortSpan-1))
	require.True(t, s.on)
	require.False(t, s.update(true, 100), "a new interleaving restarts the span")
	require.False(t, s.update(false, pipeShortSpan-1))
	require.True(t, s.update(false, 1), "span over")
	require.False(t, s.on)

	// The long pipe: pipeLongSpan bytes since the last interleaving.
	require.False(t, s.long(), "bytes since the last interleaving: %d", s.quiet)
	require.False(t, s.update(false, pipeLongSpan-pipeShortSpan-1))
	require.False(t, s.long())
	require.False(t, s.update(false, 1))
	require.True(t, s.long(), "pipeLongSpan bytes alone")
	require.False(t, s.update(false, 1<<30))
	require.True(t, s.long(), "stays long")
	require.True(t, s.update(true, 100), "an interleaving")
	require.False(t, s.long(), "an interleaving ends the long pipe at once")
}

// TestReaderYieldsBesideLarge checks when the reader gives up its P, and
// flushes the connection's output, after dispatching a message with much
// input left: never while only small messages arrive (at high concurrency
// the loop would queue behind the callers it has just woken), and while a
// large message is arriving; a connection closed by the flush ends the
// feed.
func TestReaderYieldsBesideLarge(t *testing.T) {
	cfg := testConfig(t, nil)
	w := newWriter(cfg)
	ev := &pipeEvents{t: t}
	r := newReader(cfg, ev)
	yields, flushes := 0, 0
	r.yield = func() { yields++ }
	r.flush = func() bool { flushes++; return true }
	pkt := make([]byte, cfg.BufferSize)
	// packets fills at least n bytes of packets (or all the writer has).
	packets := func(n int) []byte {
		t.Helper()
		var out []byte
		for len(out) < n {
			k, err := w.fill(pkt)
			require.NoError(t, err)
			if k == 0 {
				break
			}
			out = append(out, pkt[:k]...)
		}
		return out
	}
	feed := func(b []byte) {
		t.Helper()
		used, err := r.feed(b)
		require.NoError(t, err)
		require.Equal(t, len(b), used)
	}

	n := 0 // as many small messages as the writer takes at once
	for w.enqueue(&msgStub{msg: testmsg.New(n, 1000), ti: testTI, state: OnPeer}) {
		n++
	}
	require.Greater(t, n*1000, yieldInput+8<<10, "enough input left after the first dispatches")
	feed(packets(1 << 20))
	require.Len(t, ev.msgs, n)
	require.Zero(t, yields, "small messages only")
	require.Zero(t, flushes, "small messages only")

	require.True(t, w.enqueue(&msgStub{msg: testmsg.New(n, 1<<20), ti: testTI, state: OnPeer}))
	feed(packets(64 << 10)) // the large message is under way
	require.Equal(t, 1, r.large)
	for i := range 20 {
		require.True(t, w.enqueue(&msgStub{msg: testmsg.New(n+1+i, 1000), ti: testTI, state: OnPeer}))
	}
	feed(packets(256 << 10))
	require.Len(t, ev.msgs, n+20, "the small messages overtake the large one")
	require.Positive(t, yields, "small messages beside a large one")
	require.Equal(t, 2*yields, flushes, "output flushed before and after each yield")

	// A connection that closes while its output is flushed ends the feed:
	// nothing in the packets after the flush is dispatched.
	r.flush = func() bool { return false }
	for i := range 20 {
		require.True(t, w.enqueue(&msgStub{msg: testmsg.New(n+21+i, 1000), ti: testTI, state: OnPeer}))
	}
	got := len(ev.msgs)
	b := packets(256 << 10)
	used, err := r.feed(b)
	require.ErrorIs(t, err, errClosedMidFeed)
	require.Less(t, used, len(b))
	require.Greater(t, len(ev.msgs), got, "the packet before the flush")
	require.Less(t, len(ev.msgs), got+20, "dispatching stops after the packet of the first flush")
}

// TestSmallMessagesLongPipe: while only small messages are under way a
// connection's pipe is the long one (pipeSmallHighWater), so a burst of
// small messages larger than the pipe for large ones (writeHighWater plus
// what the kernel holds) is handed on without stalling the connection,
// here to a peer that accepts and never reads (the kernel holds about
// 256 KiB of it: TCP_NOTSENT_LOWAT and the peer's receive buffer). With the pipe for large
// messages the connection stalls and most of the sends never complete.
func TestSmallMessagesLongPipe(t *testing.T) {
	const (
		n    = 896
		size = 1024
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			accepted <- nc
		}
	}()
	cp := NewProtocol()
	MustRegister[testmsg.Message](cp, 1, nil)
	client := lcStart(t, Config{Protocol: cp, MaxQueuedMessages: 2 * n})
	require.Greater(t, n*size, 3*writeHighWater, "the burst is far longer than the pipe for large messages")
	require.Less(t, n*size, pipeSmallHighWater)

	done := make(chan error, n)
	ctx := context.Background()
	for i := range n {
		_, err := client.SendContext(ctx, ln.Addr().String(), testmsg.New(i, size), 0, func(err error) { done <- err })
		require.NoError(t, err)
	}
	nc := lcRecv(t, accepted, "the connection")
	t.Cleanup(func() { _ = nc.Close() })
	for range n {
		require.NoError(t, lcRecv(t, done, "a send's completion"))
	}
	require.Zero(t, client.r.Stats().Stalls, "stalls of the client's connection")
}

// TestLargeBodiesCount checks the writer's count of large bodies under way
// (largeBodies, read by largeUnderWay) against a scan of the write queue
// after every step of a seeded random schedule of sends, packets, window
// grants and cancels in every phase, and that it returns to zero once every
// message has finished or been canceled, and after the connection closes
// (drain).
func TestLargeBodiesCount(t *testing.T) {
	cfg := testConfig(t, func(c *Config) { c.BufferSize = 64 << 10 })
	w := newWriter(cfg)
	w.peerHello() // windowed: large bodies block for credit and come back (window.go)
	scan := func() int {
		n := 0
		for k := range w.wq.len() {
			if s := &w.slots[w.wq.at(k)]; s.phase == slotBody && s.bytes > smallMessage {
				n++
			}
		}
		return n
	}
	live := func() (out []int32) {
		for i := range w.slots {
			if w.slots[i].st != nil {
				out = append(out, int32(i))
			}
		}
		return out
	}
	rng := rand.New(rand.NewPCG(8, 1))
	sizes := []int{1000, 12 << 10, 40 << 10, 300 << 10, 1 << 20}
	pkt := make([]byte, cfg.BufferSize)
	var phases [slotParked + 1]int // phases seen when canceling
	maxLarge := 0
	for step := range 4000 {
		switch a := rng.IntN(20); {
		case a < 3 && w.queued < 6:
			var flags Flags
			if rng.IntN(2) == 0 {
				flags = AwaitResponse
			}
			w.enqueue(&msgStub{msg: testmsg.New(step, sizes[rng.IntN(len(sizes))]), ti: testTI, state: OnPeer, flags: flags})
		case a < 17:
			_, err := w.fill(pkt)
			require.NoError(t, err)
			w.done, w.failed = w.done[:0], w.failed[:0]
		case a < 18:
			for _, i := range live() {
				if w.slots[i].phase == slotBlocked {
					w.grant(uint64(i), uint64(w.slots[i].unique), uint64(rng.IntN(128<<10)+1))
					break
				}
			}
		default:
			if l := live(); len(l) > 0 {
				i := l[rng.IntN(len(l))]
				phases[w.slots[i].phase]++
				require.True(t, w.cancel(i, w.slots[i].st, ErrCanceled, nil))
			}
		}
		require.Equal(t, scan(), w.largeBodies, "step %d", step)
		maxLarge = max(maxLarge, w.largeBodies)
	}
	t.Logf("phases canceled %v, max large %d", phases, maxLarge)
	require.Greater(t, maxLarge, 1, "several large bodies under way at once")
	for _, ph := range []uint8{slotQueued, slotBody, slotBlocked, slotWait} {
		require.Positive(t, phases[ph], "canceled in phase %d", ph)
	}

	for _, i := range live() {
		if w.slots[i].phase != slotWaitCanceled {
			w.cancel(i, w.slots[i].st, ErrCanceled, nil)
		}
	}
	require.Zero(t, w.largeBodies, "after every message was canceled")
	require.False(t, w.largeUnderWay())

	for k := range 3 {
		require.True(t, w.enqueue(&msgStub{msg: testmsg.New(k, 1<<20), ti: testTI, state: OnPeer}))
	}
	for w.largeBodies < 3 {
		_, err := w.fill(pkt)
		require.NoError(t, err)
	}
	w.drain()
	require.Zero(t, w.largeBodies, "after the connection closed")
	require.False(t, w.largeUnderWay())
}

// TestSmallCallsBesideLargeEcho runs small calls, one at a time, while a
// 4 MiB request is echoed on the same connection, until the server's or the
// client's reader has flushed its connection's output in the middle of a
// long input (flushMidFeed: a response or the next request written before
// the rest of the bulk bytes read is decoded). Every call completes exactly
// once with its own payload, some while the large echo is under way, and
// the large echo arrives intact.
func TestSmallCallsBesideLargeEcho(t *testing.T) {
	var flushes atomic.Int64
	testHookFlushMidFeed = func() { flushes.Add(1) }
	t.Cleanup(func() { testHookFlushMidFeed = nil })

	sp := NewProtocol()
	require.NoError(t, Register(sp, 1, func(ctx Context, m *testmsg.Message) { _ = ctx.Respond(m) }))
	server := lcStart(t, Config{Protocol: sp, Listen: "127.0.0.1:0"})
	cp := NewProtocol()
	MustRegister[testmsg.Message](cp, 1, nil)
	client := lcStart(t, Config{Protocol: cp})
	addr := server.Addr().String()
	ctx := context.Background()

	const large = 4 << 20
	var mu sync.Mutex
	completions := map[int]int{} // small call id → completions
	id, beside := 0, 0
	for round := 0; round < 16 && flushes.Load() == 0; round++ {
		bulk := make(chan error, 1)
		_, err := SendRequestContext(ctx, client, addr, testmsg.New(1<<20+round, large), 0,
			func(_, r *testmsg.Message, err error) {
				if err == nil {
					err = testmsg.Verify(r, large)
				}
				bulk <- err
			})
		require.NoError(t, err)
		for inFlight := true; inFlight; {
			small := make(chan error, 1)
			want := id
			_, err := SendRequestContext(ctx, client, addr, testmsg.New(want, 1000), 0,
				func(_, r *testmsg.Message, err error) {
					if err == nil {
						err = testmsg.Verify(r, 1000)
					}
					if err == nil && int(r.Idx) != want {
						err = fmt.Errorf("response %d to call %d", r.Idx, want)
					}
					mu.Lock()
					completions[want]++
					mu.Unlock()
					small <- err
				})
			require.NoError(t, err)
			id++
			require.NoError(t, lcRecv(t, small, "a small call"))
			select {
			case err := <-bulk:
				require.NoError(t, err)
				inFlight = false
			default:
				beside++
			}
		}
	}
	t.Logf("%d small calls (%d beside the large echo), %d flushes", id, beside, flushes.Load())
	require.Positive(t, flushes.Load(), "output flushed in the middle of a long input")
	require.Positive(t, beside, "small calls completed while the large echo was under way")
	stopCtx, cancel := context.WithTimeout(ctx, lcDeadline)
	defer cancel()
	require.NoError(t, client.Stop(stopCtx)) // quiet: no completion may follow
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, completions, id)
	for k, n := range completions {
		require.Equal(t, 1, n, "completions of call %d", k)
	}
}

// TestSendPipeMarks checks the reactor marks of each sending pipe mode:
// beside small messages the short pipe, or the Config's when the peer
// grants windows (its reader bounds the bulk bytes in flight itself).
func TestSendPipeMarks(t *testing.T) {
	type marks struct{ high, low, notSent int }
	for _, tc := range []struct {
		name        string
		mode        uint8
		peerWindows bool
		want        marks
	}{
		{"large alone", pipeLarge, false, marks{0, 0, writeNotSentLowat}},
		{"large alone, windows", pipeLarge, true, marks{0, 0, writeNotSentLowat}},
		{"small only", pipeSmall, false, marks{pipeSmallHighWater, pipeSmallLowWater, writeNotSentLowat}},
		{"small only, windows", pipeSmall, true, marks{pipeSmallHighWater, pipeSmallLowWater, writeNotSentLowat}},
		{"small beside large", pipeShort, false, marks{pipeShortHighWater, pipeShortLowWater, pipeShortNotSent}},
		{"small beside large, windows", pipeShort, true, marks{0, 0, writeNotSentLowat}},
		{"large alone for long", pipeLong, false, marks{0, 0, pipeLongNotSent}},
		{"large alone for long, windows", pipeLong, true, marks{0, 0, pipeLongNotSent}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, l, n := sendPipeMarks(tc.mode, tc.peerWindows)
			require.Equal(t, tc.want, marks{h, l, n})
		})
	}
}

// TestLongPipeAlone follows one connection's sending pipe (pipe.go)
// through a large stream message sent alone and then a small call beside
// it: the pipe becomes the long one only after pipeLongSpan bytes without
// a small message beside the large one; the small call completes with its
// own payload, and its completion beside the large message makes the pipe
// short again at once. The large message is then canceled and completes
// once. The server's message window is long enough never to stop the
// large message: a small message that finishes while the large one waits
// for credit (out of the write queue, slotBlocked) did not pass beside it
// being written, and leaves the pipe as it is until the next one does
// (with the default 4 MiB window and the receive buffer the server grows
// for a transfer alone, growRecv, the transfer can reach its window).
// The connection keeps its loopback congestion control (loopbackCongestion)
// through the long pipe and has the kernel's default with the short one.
func TestLongPipeAlone(t *testing.T) {
	var (
		mu          sync.Mutex
		clientSvc   *Service
		sawLong     bool
		quietAtLong int
		defAtLong   = true
		defAtShort  bool
		long        = make(chan struct{}) // closed at the first long pipe
		short       = make(chan struct{}) // closed at the first short pipe after it
	)
	testHookPipe = func(c *conn) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case c.svc != clientSvc:
		case c.sendMode == pipeLong && !sawLong:
			sawLong, quietAtLong, defAtLong = true, c.sendPipe.quiet, c.sendCCDef
			close(long)
		case c.sendMode == pipeShort && sawLong && short != nil:
			defAtShort = c.sendCCDef
			close(short)
			short = nil
		}
	}
	t.Cleanup(func() { testHookPipe = nil })

	sp := NewProtocol()
	MustRegister(sp, 1, func(Context, *alongStream) {})
	MustRegister(sp, 2, func(ctx Context, m *testmsg.Message) { _ = ctx.Respond(m) })
	server := lcStart(t, Config{Protocol: sp, Listen: "127.0.0.1:0", MessageWindow: 64 << 20})
	cp := NewProtocol()
	MustRegister[alongStream](cp, 1, nil)
	MustRegister[testmsg.Message](cp, 2, nil)
	mu.Lock()
	clientSvc = lcStart(t, Config{Protocol: cp})
	shortCh := short
	mu.Unlock()
	addr := server.Addr().String()

	cancel, bigDone := sendAlong(t, clientSvc, addr)
	lcRecv(t, long, "the long pipe")
	mu.Lock()
	require.GreaterOrEqual(t, quietAtLong, pipeLongSpan, "bytes written alone before the long pipe")
	require.False(t, defAtLong, "loopback congestion control with the long pipe")
	mu.Unlock()

	calls := smallCall(t, clientSvc, addr)
	lcRecv(t, shortCh, "the short pipe after the small call")
	mu.Lock()
	require.True(t, defAtShort, "the kernel's default with the short pipe")
	mu.Unlock()

	cancelAlong(t, cancel, bigDone, calls)
}

// sendAlong sends a 100 GiB stream message (alongStream) from client to
// addr; cancel stops it, and its completion arrives on done.
func sendAlong(t *testing.T, client *Service, addr string) (cancel context.CancelFunc, done chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done = make(chan error, 2)
	_, err := client.SendContext(ctx, addr, &alongStream{src: io.LimitReader(zeros{}, 100<<30)}, 0, func(err error) { done <- err })
	require.NoError(t, err)
	return cancel, done
}

// smallCall sends a 1000-byte echo request from client to addr and waits
// for its response, checked; the returned channel then receives any
// further completion of the call (there must be none).
func smallCall(t *testing.T, client *Service, addr string) chan error {
	t.Helper()
	calls := make(chan error, 2)
	require.NoError(t, SendRequest(client, addr, testmsg.New(7, 1000), 0, func(_, resp *testmsg.Message, err error) {
		if err == nil {
			err = testmsg.Verify(resp, 1000)
		}
		calls <- err
	}))
	require.NoError(t, lcRecv(t, calls, "the small call"))
	return calls
}

// cancelAlong cancels the stream message of sendAlong and checks that it
// completes once, with ErrCanceled, and that the small call behind calls
// (smallCall) did not complete again.
func cancelAlong(t *testing.T, cancel context.CancelFunc, done, calls chan error) {
	t.Helper()
	cancel()
	require.ErrorIs(t, lcRecv(t, done, "the canceled stream"), ErrCanceled)
	select {
	case err := <-calls:
		t.Fatalf("the small call completed twice: %v", err)
	case err := <-done:
		t.Fatalf("the stream completed twice: %v", err)
	default:
	}
}

// alongStream is a message with one stream field: read from src when
// sent, dropped when received.
type alongStream struct{ src io.Reader }

func (m *alongStream) Serde(v *serde.Visitor) {
	if v.Decoding() {
		v.StreamIn(discardSink{})
		return
	}
	v.StreamOut(m.src)
}

// zeros reads zero bytes forever.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// discardSink drops what it is written.
type discardSink struct{}

func (discardSink) Write(p []byte) (int, error) { return len(p), nil }
func (discardSink) Close() error                { return nil }

// TestGrowRecvRule checks when a connection lengthens its receive buffer
// (growRecv): only once one large message has been arriving alone (no
// other large one, no small one beside it) for pipeLongSpan bytes, from a
// peer whose messages obey this end's windows; only once; never beyond
// half the message window.
func TestGrowRecvRule(t *testing.T) {
	for _, tc := range []struct {
		name      string
		set       func(c *conn)
		n         int // bytes of this read
		grown     bool
		buffer    int
		wantAlone int
	}{
		{"large alone for long", func(*conn) {}, 0, true, recvLongBuffer, pipeLongSpan},
		{"not yet long", func(c *conn) { c.recvAlone = pipeLongSpan - 11 }, 10, false, 0, pipeLongSpan - 1},
		{"long with this read", func(c *conn) { c.recvAlone = pipeLongSpan - 10 }, 10, true, recvLongBuffer, pipeLongSpan},
		{"no large message", func(c *conn) { c.r.large = 0 }, 10, false, 0, 0},
		{"two large messages", func(c *conn) { c.r.large = 2 }, 10, false, 0, 0},
		{"small messages beside", func(c *conn) { c.recvPipe.on = true }, 10, false, 0, 0},
		{"peer without windows", func(c *conn) { c.r.helloSeen = false }, 0, false, 0, pipeLongSpan},
		{"windows off here", func(c *conn) { c.r.msgWindow = -1 }, 0, false, 0, pipeLongSpan},
		{"already grown", func(c *conn) { c.recvGrown = true }, 0, true, 0, pipeLongSpan},
		{"small message window", func(c *conn) { c.r.msgWindow = 1 << 20 }, 0, true, 512 << 10, pipeLongSpan},
		{"window below the short buffer", func(c *conn) { c.r.msgWindow = windowInitial }, 0, true, loopbackRecvBuffer, pipeLongSpan},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &conn{
				r:         &reader{large: 1, msgWindow: DefaultMessageWindow, helloSeen: true},
				rc:        &reactor.Conn{}, // not loopback: SetLoopbackRecvBuffer does nothing
				recvAlone: pipeLongSpan,
			}
			tc.set(c)
			buffer := 0
			testHookRecvBuffer = func(n int) { buffer = n }
			t.Cleanup(func() { testHookRecvBuffer = nil })
			c.growRecv(tc.n)
			require.Equal(t, tc.grown, c.recvGrown)
			require.Equal(t, tc.buffer, buffer, "receive buffer asked for")
			require.Equal(t, tc.wantAlone, c.recvAlone, "bytes counted alone")
		})
	}
}

// TestRecvBufferGrowsAlone follows the receiving end of one connection
// through a large stream message arriving alone: the receive buffer is
// lengthened once, after pipeLongSpan bytes without a small message
// beside it, to recvLongBuffer; a small call beside the transfer then
// still completes, once, with its own payload (the windows bound the bulk
// bytes ahead of it), and the canceled stream completes once.
func TestRecvBufferGrowsAlone(t *testing.T) {
	var (
		mu          sync.Mutex
		serverSvc   *Service
		quietAtGrow int
		grown       = make(chan int, 1)
	)
	testHookPipe = func(c *conn) {
		mu.Lock()
		defer mu.Unlock()
		if c.svc == serverSvc && c.recvGrown && grown != nil {
			quietAtGrow = c.recvAlone
			grown <- c.recvAlone
			grown = nil
		}
	}
	asked := make(chan int, 4)
	testHookRecvBuffer = func(n int) { asked <- n }
	t.Cleanup(func() { testHookPipe, testHookRecvBuffer = nil, nil })

	sp := NewProtocol()
	MustRegister(sp, 1, func(Context, *alongStream) {})
	MustRegister(sp, 2, func(ctx Context, m *testmsg.Message) { _ = ctx.Respond(m) })
	mu.Lock()
	serverSvc = lcStart(t, Config{Protocol: sp, Listen: "127.0.0.1:0"})
	grownCh := grown
	mu.Unlock()
	cp := NewProtocol()
	MustRegister[alongStream](cp, 1, nil)
	MustRegister[testmsg.Message](cp, 2, nil)
	client := lcStart(t, Config{Protocol: cp})
	addr := serverSvc.Addr().String()

	cancel, bigDone := sendAlong(t, client, addr)
	lcRecv(t, grownCh, "the longer receive buffer")
	require.Equal(t, recvLongBuffer, lcRecv(t, asked, "the buffer asked of the reactor"))
	mu.Lock()
	require.GreaterOrEqual(t, quietAtGrow, pipeLongSpan, "bytes received alone before the buffer grew")
	mu.Unlock()

	calls := smallCall(t, client, addr)

	cancelAlong(t, cancel, bigDone, calls)
	select {
	case n := <-asked:
		t.Fatalf("the receive buffer was set again: %d", n)
	default:
	}
}
