package reactor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestExecuteWhileStalled: a function queued with no buffer before it runs
// while the connection is stalled at HighWater and the peer reads nothing,
// both when the pump stalled before it was queued and when it stalls on
// it. Before the fix it waited for the peer to drain the buffer (and when
// the peer did read, the handler's own writes in OnWritable refilled the
// buffer before every recheck, so it waited for all of their output: ipc's
// cancel of a 64 MiB message in flight arrived after the message). A
// function queued after a buffer still waits for that buffer (the order of
// Send and Execute holds).
func TestExecuteWhileStalled(t *testing.T) {
	p := newPeer(t)
	r := startReactor(t, Config{Loops: 1, HighWater: 1 << 20, LowWater: 256 << 10}, &testHandler{})
	c, err := r.Dial(dialCtx(t), p.addr(), nil)
	require.NoError(t, err)
	nc := p.accept(t) // never read until the end

	buf := make([]byte, 64<<10)
	var fillErr error // written on the loop, read after onLoop returns
	fill := func() {
		for fillErr == nil && c.Writable() {
			fillErr = c.Write(buf)
		}
	}
	onLoop(t, c, fill) // the buffer is at HighWater now; the next pump stalls
	require.NoError(t, fillErr)

	ran := make(chan int, 3)
	require.NoError(t, c.Execute(func() { ran <- 1 }))
	require.Equal(t, 1, recv(t, ran), "a function with nothing queued before it, pump idle")
	require.NoError(t, c.Execute(func() { ran <- 2 }))
	require.Equal(t, 2, recv(t, ran), "a function with nothing queued before it, pump stalled")

	// A function after a buffer waits for that buffer, which waits for room.
	require.NoError(t, c.Send(context.Background(), buf))
	require.NoError(t, c.Execute(func() { ran <- 3 }))
	select {
	case <-ran:
		t.Fatal("a function ran before the buffer queued before it was handed to gnet")
	default: // not proof that it never runs early, but it must not have yet
	}
	require.NotZero(t, r.Stats().Stalls, "the connection never stalled")
	go func() {
		b := make([]byte, 64<<10)
		for {
			if _, err := nc.Read(b); err != nil {
				return
			}
		}
	}()
	require.Equal(t, 3, recv(t, ran), "the function after the buffer, once the peer read")
}
