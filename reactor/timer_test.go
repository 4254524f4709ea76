package reactor

import (
	"container/heap"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/internal/clock"
)

// loopConn starts a one-loop reactor with one accepted connection and
// returns it with the id of the loop goroutine (seen in OnOpen).
func loopConn(t *testing.T, h *testHandler) (*Reactor, *Conn, uint64) {
	t.Helper()
	return loopConnConfig(t, Config{Loops: 1}, h)
}

// loopConnConfig is loopConn with a config (one loop).
func loopConnConfig(t *testing.T, cfg Config, h *testHandler) (*Reactor, *Conn, uint64) {
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
	r := startReactor(t, cfg, h)
	nc, err := net.Dial("tcp", r.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	o := recv(t, ch)
	return r, o.c, o.id
}

// TestTimers: timers fire in deadline order (FIFO for equal deadlines), on
// the loop goroutine, when the configured clock reaches their deadline and
// not before; stopped timers never run. The clock is a clock.Manual moved
// by the test, so nothing depends on real time.
func TestTimers(t *testing.T) {
	m := clock.NewManual(time.Unix(1000, 0))
	_, c, loopID := loopConnConfig(t, Config{Loops: 1, Clock: m}, &testHandler{})

	var mu sync.Mutex
	var fired []string
	var wrongGoroutine, stopFailed atomic.Bool
	record := func(name string) func() {
		return func() {
			if goid() != loopID {
				wrongGoroutine.Store(true)
			}
			mu.Lock()
			fired = append(fired, name)
			mu.Unlock()
		}
	}
	firedNow := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), fired...)
	}
	var l *Loop
	onLoop(t, c, func() {
		l = c.Loop()
		l.AfterFunc(30*time.Millisecond, record("30ms"))
		l.AfterFunc(10*time.Millisecond, record("10ms"))
		l.AfterFunc(20*time.Millisecond, record("20ms"))
		l.AfterFunc(0, record("0ms"))
		stopped := l.AfterFunc(5*time.Millisecond, record("stopped"))
		if !stopped.Stop() || stopped.Stop() {
			stopFailed.Store(true)
		}
		// Stopped from another timer before its deadline.
		stoppedLate := l.AfterFunc(25*time.Millisecond, record("stopped-late"))
		l.AfterFunc(15*time.Millisecond, func() {
			if !stoppedLate.Stop() {
				stopFailed.Store(true)
			}
		})
	})
	// advance moves the clock, then waits until the loop has run what the
	// clock handed it: the fire task was queued before the barrier.
	advance := func(d time.Duration) []string {
		m.Advance(d)
		done := make(chan struct{})
		require.NoError(t, l.Execute(func() { close(done) }))
		recv(t, done)
		return firedNow()
	}
	require.Empty(t, firedNow(), "nothing fires before the clock moves")
	require.Equal(t, []string{"0ms"}, advance(0))
	require.Equal(t, []string{"0ms"}, advance(9*time.Millisecond))
	require.Equal(t, []string{"0ms", "10ms"}, advance(time.Millisecond))
	require.Equal(t, []string{"0ms", "10ms"}, advance(5*time.Millisecond)) // 15 ms: stops stopped-late
	require.Equal(t, []string{"0ms", "10ms", "20ms"}, advance(5*time.Millisecond))
	require.Equal(t, []string{"0ms", "10ms", "20ms", "30ms"}, advance(time.Hour))
	require.False(t, wrongGoroutine.Load(), "timer ran off the loop")
	require.False(t, stopFailed.Load(), "Stop reported the wrong state")
	require.Zero(t, m.Pending(), "no clock timer left armed")
}

// TestTimerHeapFIFO: equal deadlines fire in creation order.
func TestTimerHeapFIFO(t *testing.T) {
	l := &Loop{}
	when := time.Now()
	var got []int
	for i := range 10 {
		heap.Push(&l.timers.heap, &Timer{set: &l.timers, when: when, seq: uint64(i), fn: func() { got = append(got, i) }})
	}
	for l.timers.heap.Len() > 0 {
		heap.Pop(&l.timers.heap).(*Timer).fn()
	}
	require.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, got)
}
