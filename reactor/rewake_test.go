package reactor

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRewakeLetsLoopRead: a connection whose OnWake writes a little and
// calls Wake again to go on (as ipc's writer pump does while it has output)
// must not keep its loop from reading. gnet runs submitted tasks until its
// queue is empty before it polls, so without rewake.go's deferral the loop
// never read the byte the peer sent (OnData never ran) while the writer
// went on; with it, OnData runs and the writer's wakes go on after it.
func TestRewakeLetsLoopRead(t *testing.T) {
	var (
		stop   atomic.Bool
		wakes  atomic.Int64
		warm   = make(chan struct{})
		gotIn  = make(chan struct{}, 1)
		chunk  = make([]byte, 1024)
		warmAt = int64(200)
	)
	p := newPeer(t)
	r := startReactor(t, Config{Loops: 1}, &testHandler{
		wake: func(c *Conn) {
			if !stop.Load() {
				chainWake(c, &wakes, warmAt, warm, chunk)
			}
		},
		data: func(c *Conn, b []byte) int {
			select {
			case gotIn <- struct{}{}:
			default:
			}
			return len(b)
		},
	})
	c, err := r.Dial(dialCtx(t), p.addr(), nil)
	require.NoError(t, err)
	nc := p.accept(t)
	go func() { _, _ = ioCopyDiscard(nc) }()
	t.Cleanup(func() { stop.Store(true) })

	c.Wake()
	recv(t, warm) // the writer is going on from wake to wake
	_, err = nc.Write([]byte{'x'})
	require.NoError(t, err)
	recv(t, gotIn) // the loop read it (hang guard waitLong)

	after := wakes.Load()
	require.Eventually(t, func() bool { return wakes.Load() > after+warmAt }, waitLong, time.Millisecond,
		"the deferred wake was lost: the writer stopped after the read")
	stop.Store(true)
}

// TestRewakeLetsOtherConnRead: the same, but the input waits on another
// connection of the loop. A writer chaining wakes with no input of its own
// must not keep the loop from reading the connections it serves beside it.
func TestRewakeLetsOtherConnRead(t *testing.T) {
	var (
		stop   atomic.Bool
		wakes  atomic.Int64
		writer atomic.Pointer[Conn]
		warm   = make(chan struct{})
		gotIn  = make(chan struct{}, 1)
		chunk  = make([]byte, 1024)
		warmAt = int64(200)
	)
	pw, pr := newPeer(t), newPeer(t)
	r := startReactor(t, Config{Loops: 1}, &testHandler{
		wake: func(c *Conn) {
			if !stop.Load() && c == writer.Load() {
				chainWake(c, &wakes, warmAt, warm, chunk)
			}
		},
		data: func(c *Conn, b []byte) int {
			if c != writer.Load() {
				select {
				case gotIn <- struct{}{}:
				default:
				}
			}
			return len(b)
		},
	})
	reader, err := r.Dial(dialCtx(t), pr.addr(), nil)
	require.NoError(t, err)
	nr := pr.accept(t)
	w, err := r.Dial(dialCtx(t), pw.addr(), nil)
	require.NoError(t, err)
	writer.Store(w)
	nw := pw.accept(t)
	go func() { _, _ = ioCopyDiscard(nw) }()
	t.Cleanup(func() { stop.Store(true) })
	require.Same(t, w.Loop(), reader.Loop(), "one loop serves both connections")

	w.Wake()
	recv(t, warm) // the writer is going on from wake to wake
	_, err = nr.Write([]byte{'x'})
	require.NoError(t, err)
	recv(t, gotIn) // the loop read the other connection (hang guard waitLong)

	after := wakes.Load()
	require.Eventually(t, func() bool { return wakes.Load() > after+warmAt }, waitLong, time.Millisecond,
		"the deferred wake was lost: the writer stopped after the read")
	stop.Store(true)
}

// chainWake is a writer that goes on from wake to wake (OnWake): it counts
// the wake, closes warm at the warmAt-th, writes chunk if c is writable and
// asks for the next wake.
func chainWake(c *Conn, wakes *atomic.Int64, warmAt int64, warm chan struct{}, chunk []byte) {
	if n := wakes.Add(1); n == warmAt {
		close(warm)
	}
	if c.Writable() {
		_ = c.Write(chunk)
	}
	c.Wake()
}
