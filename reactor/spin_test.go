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
// does too, unless it follows a transfer on an interleaved connection
// and its first sched_yield alone gave the vCPU away for longer than
// spinContended (spinOSYield). The spin's clock is the test's: nothing
// depends on real time.
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
		size        int
		bulk        = true
		interleaved = false
	)
	woke := make(chan error, 1)
	h := &testHandler{wake: func(c *Conn) {
		c.SetBulk(bulk)
		c.SetInterleaved(interleaved)
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

	// Idle CPU, but the spin's first sched_yield gives the vCPU away for
	// 100 µs (another process's thread ran): a bulk spin after a transfer
	// beside small messages (interleaved) backs off at once, though no
	// whole iteration after the first was long; a spin after small
	// writes keeps polling, and so does a bulk spin after a transfer
	// alone (not interleaved).
	first := false
	spinOSYield = func() {
		if first {
			first = false
			clk.set(time.Microsecond, 100*time.Microsecond)
		}
	}
	t.Cleanup(func() { spinOSYield = osYield })
	slowFirstYield := func(n int) int {
		first = true
		return wake(n)
	}
	require.Equal(t, spinBudget, slowFirstYield(spinBulkBytes))
	interleaved = true
	require.Equal(t, spinContendedEnd, slowFirstYield(spinBulkBytes))
	require.Equal(t, spinSkipped, wake(spinBulkBytes))
	clk.set(time.Microsecond, spinBackoff)
	require.Equal(t, spinBudget, slowFirstYield(1<<10))
	st = r.Stats()
	require.EqualValues(t, 2, st.SpinBackoffs)
	require.EqualValues(t, 2, st.SpinsSkipped)
}

// TestBulkSpinGathers: the spin after a read on a bulk connection (SetBulk,
// spinBulkBytes or more read) goes on polling while its socket holds fewer
// than spinGatherBytes, so the loop reads one larger piece instead of each
// piece as it arrives; on an interleaved connection (small messages beside
// the large one) or one not marked bulk it ends as soon as input is ready.
// The client writes 16 KiB pieces, each after everything before it was
// either consumed by OnData or seen queued by the spin (testHookGather), so
// without gathering every piece reaches OnData alone. The spin's clock is
// frozen: only readiness, gathering and tasks end a spin.
func TestBulkSpinGathers(t *testing.T) {
	clk := &spinClock{t: time.Unix(1000, 0)}
	spinNow = clk.now
	t.Cleanup(func() { spinNow = time.Now })

	for _, tc := range []struct {
		name              string
		bulk, interleaved bool
		gathers           bool
	}{
		{"bulk", true, false, true},
		{"interleaved", true, true, false},
		{"small", false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const first, piece, pieces = 64 << 10, 16 << 10, spinGatherBytes / (16 << 10)
			var (
				mu       sync.Mutex
				sizes    []int
				consumed int
			)
			// Each case has its own hook and channel, set before its
			// reactor starts: the gathering spin of "bulk" calls the hook
			// on every poll, and a value it left in a shared channel made
			// the next case's first settled return before its first write
			// was read (that read then counted among the pieces').
			queued := hookGather(t)
			got := make(chan struct{}, 1)
			h := &testHandler{
				open: func(c *Conn) { c.SetBulk(tc.bulk); c.SetInterleaved(tc.interleaved) },
				data: func(c *Conn, b []byte) int {
					mu.Lock()
					sizes = append(sizes, len(b))
					consumed += len(b)
					mu.Unlock()
					select {
					case got <- struct{}{}:
					default:
					}
					return len(b)
				},
			}
			// The receive buffer ipc sets on loopback: its window holds
			// spinGatherBytes and more (gatherLimit).
			r := startReactor(t, Config{Loops: 1, BusyPoll: time.Hour, LoopbackRecvBuffer: 256 << 10}, h)
			nc, err := net.Dial("tcp", r.Addr().String())
			require.NoError(t, err)
			t.Cleanup(func() { _ = nc.Close() })

			// settled waits until every written byte was consumed or is
			// seen queued by a gathering spin.
			written := 0
			settled := func() { t.Helper(); waitSettled(t, &mu, &consumed, written, queued, got) }
			write := func(n int) {
				t.Helper()
				_, err := nc.Write(make([]byte, n))
				require.NoError(t, err)
				written += n
				settled()
			}
			write(first)
			mu.Lock()
			before := len(sizes)
			mu.Unlock()
			for range pieces {
				write(piece)
			}
			for {
				mu.Lock()
				done := consumed
				mu.Unlock()
				if done == written {
					break
				}
				recv(t, got)
			}
			mu.Lock()
			after := sizes[before:]
			mu.Unlock()
			if tc.gathers {
				require.Len(t, after, 1, "one read of the gathered pieces")
				require.GreaterOrEqual(t, after[0], spinGatherBytes)
			} else {
				require.Len(t, after, pieces, "each piece read alone")
			}
		})
	}
}

// waitSettled waits until every written byte was consumed (*consumed, read
// under mu; got signals each consumption) or is seen queued by a gathering
// spin (queued, fed by testHookGather).
func waitSettled(t *testing.T, mu *sync.Mutex, consumed *int, written int, queued <-chan int, got <-chan struct{}) {
	t.Helper()
	seen := 0
	for {
		mu.Lock()
		done := *consumed
		mu.Unlock()
		if done == written || done+seen >= written {
			return
		}
		select {
		case seen = <-queued:
		case <-got:
			seen = 0
		case <-time.After(waitLong):
			t.Fatalf("timed out: %d of %d bytes consumed", done, written)
		}
	}
}

// hookGather sets testHookGather for one test (or subtest) and returns the
// channel it feeds: the bytes a gathering spin saw queued, a report made
// while the channel is full dropped. The hook is removed by a cleanup,
// which runs after the reactor's (registered later) has stopped it.
func hookGather(t *testing.T) chan int {
	queued := make(chan int, 1)
	testHookGather = func(q int) {
		select {
		case queued <- q:
		default:
		}
	}
	t.Cleanup(func() { testHookGather = nil })
	return queued
}
