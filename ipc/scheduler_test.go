package ipc

import (
	"testing"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/stretchr/testify/require"
)

// pipeEvents records what a reader parses in the socket-free tests.
type pipeEvents struct {
	t        testing.TB
	w        *writer // the writer answering responses, if any
	msgs     []*testmsg.Message
	hdrs     []msgHeader
	cancels  []reqID
	canceled []uint32
	kas      int
	hellos   int
	others   []Message     // messages of other types
	grants   []windowGrant // Window commands the reader asked for
}

func (e *pipeEvents) onHeader(*msgHeader) bool { return false }

func (e *pipeEvents) onMessage(h *msgHeader, m Message) {
	tm, ok := m.(*testmsg.Message)
	if !ok {
		e.others = append(e.others, m)
		return
	}
	e.msgs = append(e.msgs, tm)
	e.hdrs = append(e.hdrs, *h)
}
func (e *pipeEvents) onCancelRequest(index, unique uint64) {
	e.cancels = append(e.cancels, reqID{index, unique})
}
func (e *pipeEvents) onCancelMessage(slot uint32) { e.canceled = append(e.canceled, slot) }
func (e *pipeEvents) onKeepAlive()                { e.kas++ }
func (e *pipeEvents) onHello()                    { e.hellos++ }
func (e *pipeEvents) onWindow(slot, unique, credit uint64) {
	if e.w != nil {
		e.w.grant(slot, unique, credit)
	}
}
func (e *pipeEvents) grantWindow(g windowGrant) { e.grants = append(e.grants, g) }

func testConfig(t testing.TB, mod func(*Config)) *Config {
	t.Helper()
	p := NewProtocol()
	require.NoError(t, Register(p, 1, func(Context, *testmsg.Message) {}))
	// No window extension unless mod asks for it: these tests read the
	// writer's packets one by one, and the hello would come first.
	cfg := Config{Protocol: p, MessageWindow: -1}
	if mod != nil {
		mod(&cfg)
	}
	c, err := cfg.withDefaults()
	require.NoError(t, err)
	return &c
}

// TestProtocolBasic ports SolidFrame's protocol_basic: a writer and a
// reader joined by a 4 KiB buffer, no sockets; 150 messages (Table15 ten
// times), 10 in flight, every message intact; CancelRequest commands
// queued during the first 10 rounds all arrive.
func TestProtocolBasic(t *testing.T) {
	cfg := testConfig(t, nil)
	w := newWriter(cfg)
	ev := &pipeEvents{t: t}
	r := newReader(cfg, ev)

	const total, inFlight = 150, 10
	sizes := testmsg.Table15
	sent, completed := 0, 0
	send := func() {
		m := testmsg.New(sent, sizes[sent%len(sizes)])
		st := &msgStub{msg: m, ti: testTI, state: OnPeer, done: func(err error) {
			require.NoError(t, err)
			completed++
		}}
		require.True(t, w.enqueue(st))
		sent++
	}
	for sent < inFlight {
		send()
	}
	buf := make([]byte, cfg.BufferSize)
	var wantCancels []reqID
	rounds, received := 0, 0
	for received < total {
		if rounds < 10 {
			for k := 0; k < 10; k++ {
				id := reqID{uint64(rounds*10 + k + 1), uint64(k)}
				w.cancelReqs = append(w.cancelReqs, id)
				wantCancels = append(wantCancels, id)
			}
		}
		rounds++
		n, err := w.fill(buf)
		require.NoError(t, err)
		require.NotZero(t, n, "writer stalled with %d received", received)
		used, err := r.feed(buf[:n])
		require.NoError(t, err)
		require.Equal(t, n, used)
		for _, st := range w.done {
			st.complete(nil, nil)
		}
		w.done = w.done[:0]
		for ; received < len(ev.msgs); received++ {
			m := ev.msgs[received]
			require.NoError(t, testmsg.Verify(m, sizes[int(m.Idx)%len(sizes)]))
			require.Equal(t, OnPeer|StartedSend, ev.hdrs[received].flags)
			if sent < total {
				send()
			}
		}
	}
	require.Equal(t, total, completed)
	require.Equal(t, wantCancels, ev.cancels)
	require.False(t, w.busy())
}

// TestWriterSmallMessagesSharePackets checks that several small messages
// go in one packet.
func TestWriterSmallMessagesSharePackets(t *testing.T) {
	cfg := testConfig(t, nil)
	w := newWriter(cfg)
	for i := 0; i < 10; i++ {
		require.True(t, w.enqueue(&msgStub{msg: testmsg.New(i, 16), ti: testTI, state: OnPeer}))
	}
	buf := make([]byte, cfg.BufferSize)
	n, err := w.fill(buf)
	require.NoError(t, err)
	require.NotZero(t, n)
	require.Len(t, w.done, 10, "ten small messages fit one 4 KiB packet")
	ev := &pipeEvents{t: t}
	r := newReader(cfg, ev)
	_, err = r.feed(buf[:n])
	require.NoError(t, err)
	require.Len(t, ev.msgs, 10)
}

// TestWriterInterleavesLargeAndSmall checks round-robin: a small message
// queued behind a large one completes after at most ContinuousPackets
// packets of the large one.
func TestWriterInterleavesLargeAndSmall(t *testing.T) {
	cfg := testConfig(t, nil)
	w := newWriter(cfg)
	require.True(t, w.enqueue(&msgStub{msg: testmsg.New(0, 1<<20), ti: testTI, state: OnPeer}))
	buf := make([]byte, cfg.BufferSize)
	_, err := w.fill(buf) // the large message starts
	require.NoError(t, err)
	require.True(t, w.enqueue(&msgStub{msg: testmsg.New(1, 100), ti: testTI, state: OnPeer}))
	packets := 0
	for len(w.done) == 0 {
		_, err := w.fill(buf)
		require.NoError(t, err)
		packets++
	}
	require.LessOrEqual(t, packets, cfg.ContinuousPackets+1)
	require.Equal(t, uint32(1), w.done[0].msg.(*testmsg.Message).Idx)
}

// TestWriterNewMessageGoesFirst: with three large messages under way, a
// small message queued next is written in the very next packet (SolidFrame
// inserts new messages near the front), not after a continuity quota of
// each large one; two small messages queued together keep their order; and
// the large messages all still complete, intact.
func TestWriterNewMessageGoesFirst(t *testing.T) {
	cfg := testConfig(t, nil)
	w := newWriter(cfg)
	ev := &pipeEvents{t: t}
	r := newReader(cfg, ev)
	buf := make([]byte, cfg.BufferSize)
	pump := func() {
		n, err := w.fill(buf)
		require.NoError(t, err)
		_, err = r.feed(buf[:n])
		require.NoError(t, err)
	}
	for i := range 3 {
		require.True(t, w.enqueue(&msgStub{msg: testmsg.New(i, 1<<20), ti: testTI, state: OnPeer}))
	}
	for range 3 * cfg.ContinuousPackets {
		pump() // all three are under way
	}
	require.Empty(t, ev.msgs)
	require.True(t, w.enqueue(&msgStub{msg: testmsg.New(10, 100), ti: testTI, state: OnPeer}))
	require.True(t, w.enqueue(&msgStub{msg: testmsg.New(11, 100), ti: testTI, state: OnPeer}))
	pump()
	require.Len(t, ev.msgs, 2, "the small messages wait for no large message's turn")
	require.Equal(t, []uint32{10, 11}, []uint32{ev.msgs[0].Idx, ev.msgs[1].Idx})
	for w.hasOutput() {
		pump()
	}
	require.Len(t, ev.msgs, 5)
	for _, m := range ev.msgs {
		n := 1 << 20
		if m.Idx >= 10 {
			n = 100
		}
		require.NoError(t, testmsg.Verify(m, n))
	}
}

// TestWriterSynchronousOrder checks that synchronous messages are written
// one at a time in send order, while asynchronous ones pass them.
func TestWriterSynchronousOrder(t *testing.T) {
	cfg := testConfig(t, nil)
	w := newWriter(cfg)
	ev := &pipeEvents{t: t}
	r := newReader(cfg, ev)
	sizes := []int{100000, 16384000, 8192000, 4096000, 2000, 4000, 64000}
	for i, n := range sizes {
		require.True(t, w.enqueue(&msgStub{msg: testmsg.New(i, n), ti: testTI, flags: Synchronous, state: OnPeer}))
	}
	require.True(t, w.enqueue(&msgStub{msg: testmsg.New(100, 1000), ti: testTI, state: OnPeer}))
	buf := make([]byte, cfg.BufferSize)
	for w.hasOutput() {
		n, err := w.fill(buf)
		require.NoError(t, err)
		_, err = r.feed(buf[:n])
		require.NoError(t, err)
	}
	require.Len(t, ev.msgs, len(sizes)+1)
	var order []uint32
	for _, m := range ev.msgs {
		if m.Idx != 100 {
			order = append(order, m.Idx)
		}
	}
	require.Equal(t, []uint32{0, 1, 2, 3, 4, 5, 6}, order)
	require.Equal(t, uint32(100), ev.msgs[0].Idx, "the asynchronous message passes the large synchronous ones")
}

// testTI is the type info of testmsg.Message as id 1 in the socket-free tests.
var testTI = &typeInfo{id: 1}
