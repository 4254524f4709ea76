package ipc

import (
	"testing"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/stretchr/testify/require"
)

// TestReaderGathersMidFeedFlushes checks the mid-feed flushes of a long
// input that carries a large message with small ones spread through it
// (c=16 beside bulk): the first small message dispatched flushes at once
// (as at c=1), later ones share a flush per midFeedFlushEvery bytes of
// input instead of one each, every message is dispatched, and a new feed
// flushes its first dispatch at once again.
func TestReaderGathersMidFeedFlushes(t *testing.T) {
	cfg := testConfig(t, nil)
	w := newWriter(cfg)
	ev := &pipeEvents{t: t}
	r := newReader(cfg, ev)
	var at []int // messages dispatched at each flush
	yields := 0
	r.yield = func() { yields++ }
	r.flush = func() bool { at = append(at, len(ev.msgs)); return true }
	pkt := make([]byte, cfg.BufferSize)
	fill := func(n int) []byte { // at least n bytes of packets
		t.Helper()
		var out []byte
		for len(out) < n {
			k, err := w.fill(pkt)
			require.NoError(t, err)
			require.Positive(t, k)
			out = append(out, pkt[:k]...)
		}
		return out
	}
	// interleaved is an input of small messages, one per 8 KiB of the
	// large message's bytes.
	id := 1
	interleaved := func(smalls int) []byte {
		var in []byte
		for range smalls {
			require.True(t, w.enqueue(&msgStub{msg: testmsg.New(id, 1000), ti: testTI, state: OnPeer}))
			id++
			in = append(in, fill(8<<10)...)
		}
		return append(in, fill(yieldInput+8<<10)...) // input left after the last one
	}

	require.True(t, w.enqueue(&msgStub{msg: testmsg.New(0, 8<<20), ti: testTI, state: OnPeer}))
	first := fill(64 << 10)
	used, err := r.feed(first)
	require.NoError(t, err)
	require.Equal(t, len(first), used)
	require.Equal(t, 1, r.large, "the large message is under way")

	const smalls = 24
	in := interleaved(smalls)
	used, err = r.feed(in)
	require.NoError(t, err)
	require.Equal(t, len(in), used)
	require.Len(t, ev.msgs, smalls, "every small message dispatched")
	require.NotEmpty(t, at)
	require.Equal(t, []int{1, 1}, at[:2], "the first dispatch is flushed at once, before and after its yield")
	require.Equal(t, 2*yields, len(at), "two flushes per yield")
	require.GreaterOrEqual(t, yields, 2, "later dispatches are flushed too")
	require.LessOrEqual(t, yields, len(in)/midFeedFlushEvery+1, "one flush per midFeedFlushEvery bytes of input")
	require.Less(t, yields, smalls/2, "dispatches share flushes")

	// A new feed flushes its first dispatch at once again.
	at, yields = nil, 0
	in = interleaved(2)
	_, err = r.feed(in)
	require.NoError(t, err)
	require.Len(t, ev.msgs, smalls+2)
	require.Equal(t, []int{smalls + 1, smalls + 1}, at[:2], "the first dispatch of the feed")
}

// TestWriterNewWaiting checks what makes a mid-feed flush write
// (conn.flushWaiting): a message not started yet or a cancel, not a
// message already under way or window credit.
func TestWriterNewWaiting(t *testing.T) {
	cfg := testConfig(t, nil)
	w := newWriter(cfg)
	c := &conn{w: w}
	pkt := make([]byte, cfg.BufferSize)
	require.False(t, c.newOutput(), "nothing queued")

	require.True(t, w.enqueue(&msgStub{msg: testmsg.New(0, 1<<20), ti: testTI, state: OnPeer}))
	require.True(t, c.newOutput(), "a new large message")
	_, err := w.fill(pkt)
	require.NoError(t, err)
	require.Equal(t, slotBody, w.slots[w.wq.front()].phase)
	require.False(t, c.newOutput(), "the large message is under way")

	w.windows = append(w.windows, windowGrant{})
	require.False(t, c.newOutput(), "window credit alone waits for the pump after the feed")
	w.windows = w.windows[:0]

	require.True(t, w.enqueue(&msgStub{msg: testmsg.New(1, 1000), ti: testTI, state: OnPeer}))
	require.True(t, c.newOutput(), "a small message beside it")
	_, err = w.fill(pkt)
	require.NoError(t, err)
	require.False(t, c.newOutput(), "the small message went in the packet")

	w.cancelReqs = append(w.cancelReqs, reqID{1, 1})
	require.True(t, c.newOutput(), "a cancel")
	w.cancelReqs = w.cancelReqs[:0]

	c.directN.Add(1)
	require.True(t, c.newOutput(), "a message in the direct queue")
}
