package ipc

import (
	"testing"

	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// allocMsg is a recyclable 1 KiB message for the allocation tests.
type allocMsg struct {
	Recyclable
	Data []byte
}

func (m *allocMsg) Serde(v *serde.Visitor) { v.Bytes(&m.Data) }

type allocEvents struct{ got int }

func (e *allocEvents) onHeader(*msgHeader) bool { return false }
func (e *allocEvents) onMessage(_ *msgHeader, m Message) {
	e.got++
	releaseMsg(m)
}
func (e *allocEvents) onCancelRequest(uint64, uint64)  {}
func (e *allocEvents) onCancelMessage(uint32)          {}
func (e *allocEvents) onKeepAlive()                    {}
func (e *allocEvents) onHello()                        {}
func (e *allocEvents) onWindow(uint64, uint64, uint64) {}
func (e *allocEvents) grantWindow(windowGrant)         {}

// TestSteadyStateZeroAllocs pins the engine's hot path: a pooled stub
// through the writer (enqueue, fill) and the reader (feed, decode into a
// recycled message), then completion and recycling, allocates nothing.
func TestSteadyStateZeroAllocs(t *testing.T) {
	p := NewProtocol()
	require.NoError(t, Register[allocMsg](p, 1, nil))
	cfg := Config{Protocol: p}
	c, err := cfg.withDefaults()
	require.NoError(t, err)
	w := newWriter(&c)
	ev := &allocEvents{}
	r := newReader(&c, ev)
	ti := p.byID[1]
	m := &allocMsg{Data: make([]byte, 1024)}
	buf := make([]byte, c.BufferSize)
	round := func() { sendThrough(t, w, r, m, ti, buf) }
	for i := 0; i < 10; i++ {
		round()
	}
	allocs := testing.AllocsPerRun(200, round)
	require.Zero(t, allocs, "allocations per message through writer and reader")
	require.Equal(t, 10+200+1, ev.got) // AllocsPerRun runs once more to warm up
}

// sendThrough sends m (of type ti) through the writer w into the reader r,
// a packet of len(buf) bytes at a time, and completes and recycles the
// message's stub as the connection would: the engine's hot path without a
// socket.
func sendThrough(t testing.TB, w *writer, r *reader, m Message, ti *typeInfo, buf []byte) {
	t.Helper()
	st := stubPool.Get().(*msgStub)
	st.msg, st.ti, st.state = m, ti, OnPeer
	retainMsg(m, ti)
	if !w.enqueue(st) {
		t.Fatal("writer full")
	}
	for w.hasOutput() {
		n, err := w.fill(buf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.feed(buf[:n]); err != nil {
			t.Fatal(err)
		}
	}
	for i, st := range w.done {
		w.done[i] = nil
		if st.complete(nil, nil) {
			st.recycle()
		}
	}
	w.done = w.done[:0]
}
