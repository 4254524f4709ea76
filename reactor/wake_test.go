package reactor

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWakeCoalesces: Wakes issued while the loop is busy produce one OnWake,
// without allocating; a later Wake produces another.
func TestWakeCoalesces(t *testing.T) {
	var wakes atomic.Int64
	woke := make(chan struct{}, 16)
	_, c, _ := loopConn(t, &testHandler{wake: func(*Conn) {
		wakes.Add(1)
		woke <- struct{}{}
	}})

	block := make(chan struct{})
	started := make(chan struct{})
	require.NoError(t, c.Execute(func() { close(started); <-block }))
	recv(t, started)

	c.Wake() // enters the loop once
	allocs := testing.AllocsPerRun(1000, c.Wake)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				c.Wake()
			}
		}()
	}
	wg.Wait()
	close(block)
	recv(t, woke)
	require.Zero(t, allocs, "Wake allocates")

	// Make sure no second OnWake was pending: a marker through the queue
	// runs after the wake task.
	onLoop(t, c, func() {})
	require.Equal(t, int64(1), wakes.Load())

	c.Wake()
	recv(t, woke)
	require.Equal(t, int64(2), wakes.Load())
}

// TestLoopWriteAllocs: loop-side Write to a reading peer does not allocate
// in steady state.
func TestLoopWriteAllocs(t *testing.T) {
	_, c := discardConn(t)

	one := make([]byte, 1024)
	hdr, body := make([]byte, 8), make([]byte, 1016)
	var a1, a2 float64
	onLoop(t, c, func() {
		a1 = testing.AllocsPerRun(200, func() { _ = c.Write(one) })
		a2 = testing.AllocsPerRun(200, func() { _ = c.Write(hdr, body) })
	})
	t.Logf("allocs per Write: 1 buffer %.0f, 2 buffers %.0f", a1, a2)
	require.Zero(t, a1)
	require.Zero(t, a2)
}

func ioCopyDiscard(nc net.Conn) (int64, error) {
	buf := make([]byte, 64<<10)
	var n int64
	for {
		m, err := nc.Read(buf)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
}
