package reactor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLostSlicesNote: a yield counts as a lost slice over spinSliceLost,
// and a lost one asks for a backoff once spinLostShare of the last 64
// yields are lost; yields that return promptly shift the lost ones out.
func TestLostSlicesNote(t *testing.T) {
	const lost, quick = spinSliceLost + time.Microsecond, spinSliceLost
	var w lostSlices
	for i := 1; i < spinLostShare; i++ {
		require.False(t, w.note(lost), "lost yield %d", i)
	}
	require.False(t, w.note(quick), "a quick yield never backs off")
	require.True(t, w.note(lost), "lost yield %d", spinLostShare)
	require.True(t, w.note(lost), "the signal holds")
	for i := 0; i < 40; i++ { // 17 lost in the window still
		require.False(t, w.note(quick))
	}
	require.True(t, w.note(lost), "the lost ones are still in the window")
	for i := 0; i < 64; i++ {
		require.False(t, w.note(quick))
	}
	require.False(t, w.note(lost), "the window is clear again")

	// armed: the next lost slice would make the share.
	w = 0
	for i := 1; i < spinLostShare; i++ {
		require.False(t, w.armed(), "after %d lost", i-1)
		w.note(lost)
	}
	require.True(t, w.armed())

	// One lost slice in every eight yields, for ever: never a backoff.
	w = 0
	for i := 0; i < 10*64; i++ {
		d := quick
		if i%8 == 0 {
			d = lost
		}
		require.False(t, w.note(d), "yield %d", i)
	}
}

// TestForeignSlice: on 2 CPUs a lost slice of 1 ms is another process's
// when the process used less than 1.5 ms of CPU time meanwhile.
func TestForeignSlice(t *testing.T) {
	defer func(n int) { spinCPUs = n }(spinCPUs)
	spinCPUs = 2
	for _, tc := range []struct {
		own     time.Duration
		foreign bool
	}{
		{0, true},                       // both CPUs busy with others (two yes)
		{time.Millisecond, true},        // one of ours, the loop's CPU another's
		{1499 * time.Microsecond, true}, // ours on one CPU and part of the other
		{1500 * time.Microsecond, false},
		{2 * time.Millisecond, false}, // our own threads on both CPUs
	} {
		require.Equal(t, tc.foreign, foreignSlice(tc.own, time.Millisecond), "own %v", tc.own)
	}
}

// TestSmallSpinBacksOffOnLostSlices: spins after small messages whose
// sched_yields lose a slice (spinOSYield moves the spin's clock past
// spinSliceLost) only now and then (one in eight) run to their budget;
// when every yield does (other processes busy), the spin ends as soon as
// spinLostShare of the last 64 did and the next one is skipped
// (Stats.SmallSpinBackoffs, SmallSpinsSkipped), unless the process's own
// threads used every CPU meanwhile (spinProcessCPU). After the backoff a single
// lost yield starts the next one (the signal still holds); once yields
// return promptly the spin stays, whatever one lost slice. The spin's
// clock is the test's: nothing depends on real time.
func TestSmallSpinBacksOffOnLostSlices(t *testing.T) {
	woke := make(chan error, 1)
	r, c, clk, ends := startSpinTest(t, func(c *Conn) { woke <- c.Write(make([]byte, 1<<10)) })
	// lostEvery: every lostEvery-th yield (counted in yields) loses a
	// slice; 0: none. Both loop-only while a spin runs: set between spins.
	// ownCPUs: how many CPUs the process's own threads kept busy during
	// a lost slice; cpu: the process's CPU time.
	const slice = spinSliceLost + time.Microsecond
	var (
		lostEvery, yields, ownCPUs int
		cpu                        time.Duration
	)
	spinOSYield = func() {
		yields++
		if lostEvery > 0 && yields%lostEvery == 0 {
			clk.set(time.Microsecond, slice)
			cpu += time.Duration(ownCPUs) * slice
		}
	}
	cpus := spinCPUs
	spinProcessCPU, spinCPUs = func() time.Duration { return cpu }, 2
	t.Cleanup(func() { spinOSYield, spinProcessCPU, spinCPUs = osYield, processCPU, cpus })

	// The handler writes 1 KiB in OnWake; the spin after it ends as the
	// clock and the yields say. Nothing arrives meanwhile and no task is
	// submitted, so readiness and tasks cannot end it. spin returns how
	// it ended and how many yields it made.
	spin := func(every int) (int, int) {
		t.Helper()
		lostEvery, yields = every, 0
		c.Wake()
		require.NoError(t, recv(t, woke))
		end := recv(t, ends)
		return end, yields
	}
	clk.set(time.Microsecond, 0)
	for i := 0; i < 4; i++ { // a lost slice now and then
		end, n := spin(8)
		require.Equal(t, spinBudget, end)
		require.Greater(t, n, 64)
	}
	require.Zero(t, r.Stats().SmallSpinBackoffs)

	ownCPUs = 2 // every yield loses a slice, to the process's own threads
	for i := 0; i < 2; i++ {
		end, n := spin(1)
		require.Equal(t, spinBudget, end)
		require.Greater(t, n, spinLostShare)
	}
	require.Zero(t, r.Stats().SmallSpinBackoffs)

	ownCPUs = 1 // and now another process has the loop's CPU
	end, n := spin(1)
	require.Equal(t, spinContendedEnd, end)
	require.Equal(t, 1, n, "the window is full of lost slices already")
	end, _ = spin(1)
	require.Equal(t, spinSkipped, end)
	st := r.Stats()
	require.EqualValues(t, 1, st.SmallSpinBackoffs)
	require.EqualValues(t, 1, st.SmallSpinsSkipped)
	require.Zero(t, st.SpinBackoffs+st.SpinsSkipped, "the bulk spin's backoff is apart")

	clk.set(time.Microsecond, spinShareBackoff) // the backoff is over
	end, n = spin(1)
	require.Equal(t, spinContendedEnd, end, "the signal still holds")
	require.Equal(t, 1, n, "the re-check costs one yield")

	clk.set(time.Microsecond, spinShareBackoff)
	end, _ = spin(0) // the other load is gone
	require.Equal(t, spinBudget, end)
	end, _ = spin(1 << 30) // hardly ever: the first yield is not lost
	require.Equal(t, spinBudget, end)
	lostEvery = 0
	end, _ = spin(0)
	require.Equal(t, spinBudget, end)
	st = r.Stats()
	require.EqualValues(t, 2, st.SmallSpinBackoffs)
	require.EqualValues(t, 1, st.SmallSpinsSkipped)
}
