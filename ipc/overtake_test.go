package ipc

import (
	"testing"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/stretchr/testify/require"
)

// TestOvertakeRules checks, without sockets, which input a read may leave
// behind when small messages are decoded ahead of it (overtake.go), and
// which packets may go ahead: the rest of a read must be whole packets of
// continuation chunks; packets go ahead only if they hold messages that
// start on idle slots and end among them (and window grants).
func TestOvertakeRules(t *testing.T) {
	cfg := testConfig(t, nil)
	w := newWriter(cfg)
	r := newReader(cfg, &pipeEvents{t: t})
	only := func(b []byte) bool { // whole packets of continuation chunks
		_, cut, ok := r.continuations(b)
		return ok && len(cut) == 0
	}
	packet := func(w *writer) []byte {
		t.Helper()
		buf := make([]byte, cfg.BufferSize)
		n, err := w.fill(buf)
		require.NoError(t, err)
		require.Positive(t, n)
		return buf[:n]
	}
	require.True(t, w.enqueue(&msgStub{msg: testmsg.New(0, 1<<20), ti: testTI, state: OnPeer}))
	first := packet(w) // NewMessage of the large message, slot 0
	require.False(t, only(first), "a message starts there")
	in := first
	for range 5 {
		in = append(in, packet(w)...)
	}
	used, err := r.feed(in)
	require.NoError(t, err)
	require.Equal(t, len(in), used)
	require.Equal(t, 1, r.large, "the large message is under way")

	var rest []byte
	for range 4 {
		rest = append(rest, packet(w)...)
	}
	require.True(t, only(rest), "continuation chunks only")
	require.True(t, only(nil))
	// A packet cut by the read's end: checked once its end has been read.
	whole, cut, ok := r.continuations(rest[:len(rest)-100])
	require.True(t, ok)
	require.Len(t, whole, 3*len(rest)/4)
	need, ok := r.cutContinuation(cut, 1000)
	require.True(t, ok)
	require.Equal(t, 100, need)
	require.True(t, r.cutEnds(cut, rest[len(rest)-100:]))
	_, ok = r.cutContinuation(cut, 99)
	require.False(t, ok, "its end is not in the socket yet")
	_, ok = r.cutContinuation(cut[:3], 1000)
	require.False(t, ok, "its header is cut")

	// A small message beside the large one: the writer puts it first in a
	// packet whose rest is the large message's next chunk.
	require.True(t, w.enqueue(&msgStub{msg: testmsg.New(1, 100), ti: testTI, state: OnPeer}))
	mixed := packet(w)
	require.False(t, only(mixed), "a message completes there")
	_, cut, ok = r.continuations(append(append([]byte(nil), rest...), mixed[:len(mixed)-10]...))
	require.True(t, ok, "the cut packet is checked with its end")
	require.False(t, r.cutEnds(cut, mixed[len(mixed)-10:]), "a message completes there")
	require.Zero(t, r.overtakers(mixed), "a continuation chunk cannot go ahead of the rest")

	// A packet of complete messages only: ahead on an idle slot, not on
	// the busy one.
	w2 := newWriter(cfg)
	require.True(t, w2.enqueue(&msgStub{msg: testmsg.New(2, 100), ti: testTI, state: OnPeer}))
	small := packet(w2) // slot 0
	require.Zero(t, r.overtakers(small), "slot 0 is busy with the large message")
	idle := newReader(cfg, &pipeEvents{t: t})
	require.Equal(t, len(small), idle.overtakers(small))
	require.Equal(t, len(small), idle.overtakers(append(small, rest[:10]...)), "whole packets only")
	require.Zero(t, idle.overtakers(small[:len(small)-1]))
	require.Zero(t, idle.overtakers(first), "a message that does not end there")
	require.Zero(t, idle.overtakers(append(append([]byte(nil), first...), small...)), "nor anything behind it")
	require.Equal(t, len(small), idle.overtakers(append(append([]byte(nil), small...), first...)), "up to it")
}
