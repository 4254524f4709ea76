package reactor

import (
	"container/heap"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// loopConn starts a one-loop reactor with one accepted connection and
// returns it with the id of the loop goroutine (seen in OnOpen).
func loopConn(t *testing.T, h *testHandler) (*Reactor, *Conn, uint64) {
	t.Helper()
	type opened struct {
		c  *Conn
		id uint64
	}
	ch := make(chan opened, 1)
	inner := h.open
	h.open = func(c *Conn) {
		if inner != nil {
			inner(c)
		}
		ch <- opened{c, goid()}
	}
	r := startReactor(t, Config{Loops: 1}, h)
	nc, err := net.Dial("tcp", r.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	o := recv(t, ch)
	return r, o.c, o.id
}

// TestTimers: timers fire in deadline order (FIFO for equal deadlines), on
// the loop goroutine; stopped timers never run.
func TestTimers(t *testing.T) {
	_, c, loopID := loopConn(t, &testHandler{})

	var mu sync.Mutex
	var fired []string
	var wrongGoroutine bool
	done := make(chan struct{})
	record := func(name string) func() {
		return func() {
			if goid() != loopID {
				wrongGoroutine = true
			}
			mu.Lock()
			fired = append(fired, name)
			mu.Unlock()
		}
	}
	var stoppedLate *Timer
	onLoop(t, c, func() {
		l := c.Loop()
		l.AfterFunc(30*time.Millisecond, record("30ms"))
		l.AfterFunc(10*time.Millisecond, record("10ms"))
		l.AfterFunc(20*time.Millisecond, record("20ms"))
		l.AfterFunc(0, record("0ms"))
		stopped := l.AfterFunc(5*time.Millisecond, record("stopped"))
		require.True(t, stopped.Stop())
		require.False(t, stopped.Stop())
		// Stopped from another timer before its deadline.
		stoppedLate = l.AfterFunc(25*time.Millisecond, record("stopped-late"))
		l.AfterFunc(15*time.Millisecond, func() { require.True(t, stoppedLate.Stop()) })
		l.AfterFunc(40*time.Millisecond, func() { close(done) })
	})
	// Equal deadlines are covered by TestTimerHeapFIFO.
	recv(t, done)
	mu.Lock()
	defer mu.Unlock()
	require.False(t, wrongGoroutine, "timer ran off the loop")
	require.Equal(t, []string{"0ms", "10ms", "20ms", "30ms"}, fired)
}

// TestTimerHeapFIFO: equal deadlines fire in creation order.
func TestTimerHeapFIFO(t *testing.T) {
	l := &Loop{}
	when := time.Now()
	var got []int
	for i := range 10 {
		heap.Push(&l.timers, &Timer{l: l, when: when, seq: uint64(i), fn: func() { got = append(got, i) }})
	}
	for l.timers.Len() > 0 {
		heap.Pop(&l.timers).(*Timer).fn()
	}
	require.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, got)
}
