package reactor

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// spinClock is a clock for the spin that moves step at each reading, so
// that every iteration of a spin seems to take step: a CPU given away at
// each yield (contended) when step is long, one nobody else wants when it
// is short.
type spinClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *spinClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

func (c *spinClock) set(step, jump time.Duration) {
	c.mu.Lock()
	c.step = step
	c.t = c.t.Add(jump)
	c.mu.Unlock()
}

// TestBulkSpinBacksOff: a spin after a bulk transfer (spinBulkBytes
// moved on a connection marked SetBulk) ends as soon as one of its
// iterations took longer than spinContended and starts a backoff
// (Stats.SpinBackoffs), during which the loop skips bulk spins
// (Stats.SpinsSkipped); a spin after small writes on the same contended
// CPU keeps polling until its budget, and so does one after as many bytes
// on a connection not marked bulk; a bulk spin on an uncontended CPU
// does too. The spin's clock is the test's: nothing depends on real time.
func TestBulkSpinBacksOff(t *testing.T) {
	clk := &spinClock{t: time.Unix(1000, 0)}
	ends := make(chan int, 16)
	spinNow, testHookSpin = clk.now, func(_ *Loop, end int) {
		if end != spinReady && end != spinTask {
			ends <- end
		}
	}
	t.Cleanup(func() { spinNow, testHookSpin = time.Now, nil })

	var (
		size int
		bulk = true
	)
	woke := make(chan error, 1)
	h := &testHandler{wake: func(c *Conn) {
		c.SetBulk(bulk)
		woke <- c.Write(make([]byte, size))
	}}
	opened := make(chan *Conn, 1)
	h.open = func(c *Conn) { opened <- c }
	r := startReactor(t, Config{Loops: 1, BusyPoll: 10 * time.Millisecond}, h)
	nc, err := net.Dial("tcp", r.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	go func() { _, _ = io.Copy(io.Discard, nc) }()
	c := recv(t, opened)

	// The handler writes size bytes in OnWake; the spin after it ends as
	// the clock says. Nothing arrives meanwhile and no task is submitted,
	// so readiness and tasks cannot end it.
	wake := func(n int) int {
		t.Helper()
		size = n
		c.Wake()
		require.NoError(t, recv(t, woke))
		return recv(t, ends)
	}
	clk.set(100*time.Microsecond, 0) // contended: each iteration 100 µs
	require.Equal(t, spinContendedEnd, wake(spinBulkBytes))
	require.Equal(t, spinSkipped, wake(spinBulkBytes))
	require.Equal(t, spinBudget, wake(1<<10))
	bulk = false // small messages only, however many bytes
	require.Equal(t, spinBudget, wake(2*spinBulkBytes))
	bulk = true
	st := r.Stats()
	require.EqualValues(t, 1, st.SpinBackoffs)
	require.EqualValues(t, 1, st.SpinsSkipped)

	clk.set(time.Microsecond, spinBackoff) // the backoff is over; idle CPU
	require.Equal(t, spinBudget, wake(2*spinBulkBytes))
	st = r.Stats()
	require.EqualValues(t, 1, st.SpinBackoffs)
	require.EqualValues(t, 1, st.SpinsSkipped)
}
