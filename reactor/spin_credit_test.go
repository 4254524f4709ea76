package reactor

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCreditWaitSpin: while a connection of the loop has a message out of
// credit (SetCreditWait), the spin after a bulk transfer is not a bulk
// spin: on a contended CPU it neither backs off nor is skipped during a
// backoff, it still yields its thread at each poll (sched_yield) and it
// lasts spinCreditBudget budgets; once the grant came (SetCreditWait(false)),
// or the connection closed, the loop's bulk spins back off again. The
// spin's clock is the test's: nothing depends on real time.
func TestCreditWaitSpin(t *testing.T) {
	clk := &spinClock{t: time.Unix(1000, 0)}
	type end struct {
		how     int
		elapsed time.Duration
		yields  int
	}
	ends := make(chan end, 16)
	var start time.Time
	yields := 0
	spinNow, testHookSpin = clk.now, func(_ *Loop, how int) {
		if how != spinReady && how != spinTask {
			clk.mu.Lock()
			ends <- end{how, clk.t.Sub(start), yields}
			clk.mu.Unlock()
		}
	}
	spinOSYield = func() { yields++ }
	t.Cleanup(func() { spinNow, testHookSpin, spinOSYield = time.Now, nil, osYield })

	const busyPoll = 10 * time.Millisecond
	credit := false
	woke := make(chan error, 1)
	h := &testHandler{wake: func(c *Conn) {
		c.SetBulk(true)
		c.SetInterleaved(true)
		c.SetCreditWait(credit)
		clk.mu.Lock()
		start, yields = clk.t, 0
		clk.mu.Unlock()
		woke <- c.Write(make([]byte, spinBulkBytes))
	}}
	opened := make(chan *Conn, 1)
	closed := make(chan int, 1)
	h.open = func(c *Conn) { opened <- c }
	h.closed = func(c *Conn, _ error) { closed <- c.Loop().creditWaits }
	r := startReactor(t, Config{Loops: 1, BusyPoll: busyPoll}, h)
	nc, err := net.Dial("tcp", r.Addr().String())
	require.NoError(t, err)
	go func() { _, _ = io.Copy(io.Discard, nc) }()
	c := recv(t, opened)
	wake := func() end {
		t.Helper()
		c.Wake()
		require.NoError(t, recv(t, woke))
		return recv(t, ends)
	}

	clk.set(100*time.Microsecond, 0) // contended: each iteration 100 µs
	credit = true
	e := wake()
	require.Equal(t, spinBudget, e.how, "a spin for a grant does not back off")
	require.GreaterOrEqual(t, e.elapsed, spinCreditBudget*busyPoll)
	require.NotZero(t, e.yields, "a spin for a grant still gives its thread away at each poll")

	credit = false // the grant came: bulk spins back off again
	require.Equal(t, spinContendedEnd, wake().how)
	require.Equal(t, spinSkipped, wake().how)
	credit = true // out of credit during the backoff: the spin runs
	require.Equal(t, spinBudget, wake().how)
	st := r.Stats()
	require.EqualValues(t, 1, st.SpinBackoffs)
	require.EqualValues(t, 1, st.SpinsSkipped)

	// A connection that closes while out of credit no longer counts.
	require.NoError(t, nc.Close())
	require.Zero(t, recv(t, closed))
}
