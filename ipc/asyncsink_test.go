package ipc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// gatedSink is a consumer that takes nothing until its gate opens, then
// collects what it is given.
type gatedSink struct {
	gate   chan struct{}
	mu     sync.Mutex
	buf    bytes.Buffer
	closed bool
}

func newGatedSink() *gatedSink { return &gatedSink{gate: make(chan struct{})} }

// open opens the gate, if it is not open yet.
func (g *gatedSink) open() {
	select {
	case <-g.gate:
	default:
		close(g.gate)
	}
}

func (g *gatedSink) Write(p []byte) (int, error) {
	<-g.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}

func (g *gatedSink) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	return nil
}

func (g *gatedSink) bytes() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return bytes.Clone(g.buf.Bytes())
}

// asyncMsg carries a stream field; received, it goes to an AsyncSink over
// the consumer newAsyncDst returns.
type asyncMsg struct {
	Src  io.Reader
	Sink *AsyncSink
}

// newAsyncDst makes the consumer of each received asyncMsg (set by the
// test that uses asyncMsg).
var newAsyncDst func() serde.StreamSink

func (m *asyncMsg) Serde(v *serde.Visitor) {
	if v.Decoding() {
		if m.Sink == nil {
			m.Sink = NewAsyncSink(newAsyncDst())
			if asyncSinkCreated != nil {
				asyncSinkCreated(m.Sink)
			}
		}
		v.StreamIn(m.Sink)
		return
	}
	v.StreamOut(m.Src)
}

// asyncPair is a windowPair whose reader runs the asynchronous sinks'
// reports on the test goroutine (the "loop") when it drains posted.
type asyncPair struct {
	*windowPair
	posted chan func()
}

func newAsyncPair(t *testing.T, dst serde.StreamSink) *asyncPair {
	newAsyncDst = func() serde.StreamSink { return dst }
	t.Cleanup(func() { newAsyncDst = nil })
	p := &asyncPair{windowPair: newWindowPair(t), posted: make(chan func(), 1024)}
	p.r.proto = NewProtocol()
	MustRegister[asyncMsg](p.r.proto, 2, nil)
	MustRegister[testmsg.Message](p.r.proto, 1, nil)
	p.r.post = func(fn func()) error { p.posted <- fn; return nil }
	return p
}

// enqueueStream queues an asyncMsg whose stream is n bytes of pattern.
func (p *asyncPair) enqueueStream(n int) []byte {
	data := bytes.Repeat([]byte("0123456789abcdef"), n/16)
	m := &asyncMsg{Src: bytes.NewReader(data)}
	ti := p.r.proto.lookup(m)
	require.True(p.t, p.w.enqueue(&msgStub{msg: m, ti: ti, state: OnPeer}))
	return data
}

// TestAsyncSinkPausesOnlyItsMessage: a stream whose consumer takes
// nothing stops at its window (the reader holds at most W0 for it, and
// grants nothing), a small message passes it, and once the consumer
// takes the bytes the grants flow and the stream arrives whole.
func TestAsyncSinkPausesOnlyItsMessage(t *testing.T) {
	dst := newGatedSink()
	p := newAsyncPair(t, dst)
	data := p.enqueueStream(4 << 20)
	p.flow()
	require.Equal(t, slotBlocked, p.w.slots[0].phase, "the stream waits for credit")
	require.LessOrEqual(t, p.r.asyncHeld, int64(windowInitial))
	require.Greater(t, p.r.asyncHeld, int64(windowInitial)-int64(len(p.buf)))
	require.Zero(t, p.r.asyncPlain, "windowed bytes do not pause the connection")
	require.Empty(t, p.ev.grants, "nothing consumed, nothing granted")

	require.True(t, p.w.enqueue(&msgStub{msg: testmsg.New(1, 1000), ti: testTI, state: OnPeer}))
	p.flow()
	require.Len(t, p.ev.msgs, 1, "the small message passes the paused stream")

	as := p.r.slots[0].async
	close(dst.gate)
	for rounds := 0; len(p.ev.others) == 0; rounds++ {
		require.Less(t, rounds, 10000, "no progress")
		(<-p.posted)() // a report from the sink's goroutine, run on "the loop"
		p.deliver()
		p.flow()
	}
	<-as.Done()
	require.NoError(t, as.Err())
	require.Equal(t, data, dst.bytes())
	for p.r.asyncHeld > 0 { // the last reports
		(<-p.posted)()
	}
}

func (g *gatedSink) closedNow() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// TestAsyncSinkWindowExceeded: a writer that ignores its window while the
// receiver's consumer is stalled is a protocol error (ErrWindowExceeded)
// once it sends more than the window.
func TestAsyncSinkWindowExceeded(t *testing.T) {
	dst := newGatedSink()
	p := newAsyncPair(t, dst)
	p.enqueueStream(4 << 20)
	n, err := p.w.fill(p.buf)
	require.NoError(t, err)
	_, err = p.r.feed(p.buf[:n])
	require.NoError(t, err)
	p.w.slots[0].credit = 1 << 40 // a writer that ignores its window
	for {
		n, err := p.w.fill(p.buf)
		require.NoError(t, err)
		require.NotZero(t, n, "the whole stream went through")
		if _, err = p.r.feed(p.buf[:n]); err != nil {
			require.ErrorIs(t, err, ErrWindowExceeded)
			require.ErrorIs(t, err, ErrProtocol)
			break
		}
	}
	// The connection closes: the sink is abandoned, its consumer closed.
	p.r.abortAsync(ErrConnection)
	close(dst.gate)
	as := p.r.slots[0].async
	<-as.Done()
	require.True(t, errors.Is(as.Err(), ErrConnection))
	require.True(t, dst.closedNow())
}

// asyncSinkCreated, if set by a test, sees each AsyncSink asyncMsg makes.
var asyncSinkCreated func(*AsyncSink)

// queuedBytes is what s holds, for tests.
func (s *AsyncSink) queuedBytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := -s.head
	for _, b := range s.blocks {
		n += len(b)
	}
	return n
}

// asyncServer starts a server whose asyncMsg consumer is dst (an
// AsyncSink over it, reported to created) and which answers each asyncMsg
// once its consumer is done, and echoes flowMsg; stops lists the causes
// its connections closed with.
func asyncServer(t *testing.T, dst serde.StreamSink, created func(*AsyncSink), window int) (addr string, stops chan error) {
	newAsyncDst = func() serde.StreamSink { return dst }
	asyncSinkCreated = created
	t.Cleanup(func() { newAsyncDst, asyncSinkCreated = nil, nil })
	stops = make(chan error, 16)
	sp := NewProtocol()
	MustRegister(sp, 1, func(ctx Context, m *flowMsg) { _ = ctx.Respond(m) })
	MustRegister(sp, 2, func(ctx Context, m *asyncMsg) {
		go func() {
			<-m.Sink.Done()
			_ = ctx.Respond(&flowMsg{Data: []byte(fmt.Sprint(m.Sink.Err()))})
		}()
	})
	server, err := NewService(Config{Protocol: sp, Listen: "127.0.0.1:0", MessageWindow: window,
		ConnectionStop: func(_ ConnInfo, err error) { stops <- err }})
	require.NoError(t, err)
	require.NoError(t, server.Start())
	t.Cleanup(func() { stopWithin(t, server) })
	return server.Addr().String(), stops
}

func asyncClientProtocol() *Protocol {
	cp := NewProtocol()
	MustRegister[flowMsg](cp, 1, nil)
	MustRegister[asyncMsg](cp, 2, nil)
	return cp
}

// TestAsyncSinkOverConnection: between two services, a 32 MiB stream whose
// consumer takes nothing pauses at its window (the receiver holds at most
// MessageWindow bytes for it) while small requests on the same connection
// are answered; once the consumer takes the bytes the stream completes,
// byte for byte.
func TestAsyncSinkOverConnection(t *testing.T) {
	t.Run("windowed", func(t *testing.T) { testAsyncSinkOverConnection(t, 0) })
	// A receiver that does not announce windows, as a C++ SolidFrame
	// service: the stream is not windowed, so the receiver stops reading
	// the connection (TCP back-pressure) while its sink holds 4 MiB;
	// small requests wait for the consumer too, and memory stays bounded.
	t.Run("plain", func(t *testing.T) { testAsyncSinkOverConnection(t, -1) })
}

func testAsyncSinkOverConnection(t *testing.T, window int) {
	dst := newGatedSink()
	t.Cleanup(dst.open)
	sinks := make(chan *AsyncSink, 1)
	addr, _ := asyncServer(t, dst, func(s *AsyncSink) { sinks <- s }, window)
	client, err := NewService(Config{Protocol: asyncClientProtocol()})
	require.NoError(t, err)
	require.NoError(t, client.Start())
	t.Cleanup(func() { stopWithin(t, client) })

	small := func(i int) { echoSmall(t, client, addr, i) }
	// A message started before the peer's hello arrived is not windowed:
	// let the connection open (and the hello arrive) first.
	small(-1)

	data := bytes.Repeat([]byte("0123456789abcdef"), (32<<20)/16)
	type result struct {
		resp *flowMsg
		err  error
	}
	streamDone := make(chan result, 1)
	require.NoError(t, SendRequest(client, addr, &asyncMsg{Src: bytes.NewReader(data)}, 0,
		func(_ *asyncMsg, resp *flowMsg, err error) { streamDone <- result{resp, err} })) // on a loop: no require
	sink := flowRecv(t, sinks)

	if window < 0 {
		// Wait until the receiver has paused: its sink holds at least
		// asyncPauseBytes and no more arrives.
		for sink.queuedBytes() < asyncPauseBytes {
			runtime.Gosched()
		}
		held := sink.queuedBytes()
		t.Logf("the receiver paused, holding %d bytes of the stream", held)
		require.LessOrEqual(t, held, asyncPauseBytes+1<<20)
		close(dst.gate)
		for i := range 20 {
			small(i)
		}
	} else {
		for i := range 20 {
			small(i)
		}
		held := sink.queuedBytes()
		t.Logf("the receiver holds %d bytes of the paused stream", held)
		require.LessOrEqual(t, held, DefaultMessageWindow)
		select {
		case <-streamDone:
			t.Fatal("the stream completed while its consumer took nothing")
		default:
		}
		close(dst.gate)
	}
	res := flowRecv(t, streamDone)
	require.NoError(t, res.err)
	require.Equal(t, "<nil>", string(res.resp.Data))
	require.True(t, bytes.Equal(data, dst.bytes()), "the consumer got the stream byte for byte")
}

// TestWindowIgnoredClosesOnlyThatConnection: a raw peer that marks its
// stream windowed and then ignores the window, while the receiver's
// consumer is stalled, is closed with ErrWindowExceeded; another client is
// served before and after.
func TestWindowIgnoredClosesOnlyThatConnection(t *testing.T) {
	dst := newGatedSink()
	t.Cleanup(func() { close(dst.gate) })
	addr, stops := asyncServer(t, dst, nil, 0)
	client, err := NewService(Config{Protocol: asyncClientProtocol()})
	require.NoError(t, err)
	require.NoError(t, client.Start())
	t.Cleanup(func() { stopWithin(t, client) })
	echo := func() {
		got := make(chan error, 1)
		require.NoError(t, SendRequest(client, addr, &flowMsg{Data: []byte("hi")}, 0,
			func(_, _ *flowMsg, err error) { got <- err }))
		require.NoError(t, flowRecv(t, got))
	}
	echo()

	ccfg, err := Config{Protocol: asyncClientProtocol(), MessageWindow: -1}.withDefaults()
	require.NoError(t, err)
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	go func() { _, _ = io.Copy(io.Discard, nc) }() // the server's hello
	w := newWriter(&ccfg)
	w.peerWindows = true // marks the stream windowed...
	m := &asyncMsg{Src: bytes.NewReader(make([]byte, 8<<20))}
	require.True(t, w.enqueue(&msgStub{msg: m, ti: ccfg.Protocol.lookup(m), state: OnPeer}))
	buf := make([]byte, ccfg.BufferSize)
	n, err := w.fill(buf)
	require.NoError(t, err)
	w.slots[0].credit = 1 << 40 // ...and ignores it
	go func() {
		for ; n > 0; n, _ = w.fill(buf) {
			if _, err := nc.Write(buf[:n]); err != nil {
				return // closed by the server
			}
		}
	}()
	cause := flowRecv(t, stops)
	require.ErrorIs(t, cause, ErrWindowExceeded)
	var ce *ConnError
	require.ErrorAs(t, cause, &ce)
	echo()
}

// TestWindowStartMidMessage: a stream that started before the peer's hello
// arrived (so unwindowed: on a new connection the first message often
// does) becomes windowed from its next byte once the hello arrives
// (WindowStart), so a stalled consumer holds at most W0 more of it and the
// connection is not paused for it.
func TestWindowStartMidMessage(t *testing.T) {
	dst := newGatedSink()
	p := newAsyncPair(t, dst)
	p.w.peerWindows = false // the hello has not arrived yet
	data := p.enqueueStream(4 << 20)
	for range 8 { // 8 packets before the hello
		n, err := p.w.fill(p.buf)
		require.NoError(t, err)
		_, err = p.r.feed(p.buf[:n])
		require.NoError(t, err)
	}
	require.False(t, p.w.slots[0].windowed)
	before := p.r.asyncHeld
	require.Equal(t, before, p.r.asyncPlain, "unwindowed bytes count toward the read pause")

	p.w.peerHello()
	p.flow()
	require.Equal(t, slotBlocked, p.w.slots[0].phase, "windowed from the hello on")
	require.Zero(t, p.r.asyncPlain, "the stream's bytes no longer pause the connection")
	require.LessOrEqual(t, p.r.asyncHeld-before, int64(windowInitial))
	require.Greater(t, p.r.asyncHeld-before, int64(windowInitial)-int64(len(p.buf)))

	as := p.r.slots[0].async
	close(dst.gate)
	for rounds := 0; len(p.ev.others) == 0; rounds++ {
		require.Less(t, rounds, 10000, "no progress")
		(<-p.posted)()
		p.deliver()
		p.flow()
	}
	<-as.Done()
	require.NoError(t, as.Err())
	require.Equal(t, data, dst.bytes())
}
