package ipc

import (
	"testing"

	"github.com/ipcframe/ipcframe/internal/testmsg"
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
}
