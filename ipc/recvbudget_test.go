package ipc

import (
	"bytes"
	"runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/buffers"
)

// TestRecvBudgetRule pins the trust rule: nothing is lent before a value
// was delivered in full; then no value larger than the largest such value,
// and at most twice it over all the values under way; an abandoned loan
// takes the proof away.
func TestRecvBudgetRule(t *testing.T) {
	var b recvBudget
	require.False(t, b.Lend(40<<10), "a new connection proved nothing")
	b.End(1<<20, 1<<20-1, false) // abandoned, not lent: proves nothing
	require.False(t, b.Lend(40<<10))
	b.End(1<<20, 1<<20, false)
	require.False(t, b.Lend(1<<20+1), "more than the largest value delivered")
	require.True(t, b.Lend(1<<20))
	require.True(t, b.Lend(600<<10), "a second value beside it")
	require.False(t, b.Lend(600<<10), "values together past twice the proof")
	require.True(t, b.Lend(1<<20-600<<10))
	require.False(t, b.Lend(40<<10))
	b.End(600<<10, 600<<10, true)
	require.True(t, b.Lend(500<<10), "a delivered loan comes back")
	b.End(4<<20, 4<<20, false) // a larger value grew in segments
	require.Equal(t, 4<<20, b.proven)
	require.True(t, b.Lend(2<<20))
	b.End(2<<20, 1<<20, true) // abandoned: the proof is gone
	require.Equal(t, 0, b.proven)
	require.False(t, b.Lend(40<<10))
	b.End(1<<20, 1<<20, true)
	b.End(500<<10, 500<<10, true)
	b.End(1<<20-600<<10, 1<<20-600<<10, true)
	require.Zero(t, b.lent)
}

// TestPlainLargeValueInPlace sends plain messages (not Recyclable) through
// a writer and a reader: the first large value grows in segments; once it
// was delivered, a value as large arrives in one array of its declared
// size allocated at its start (no segment taken, its bytes allocated once),
// a larger one grows in segments again, and a value cut by its
// connection's close or by a CancelMessage takes the proof away.
func TestPlainLargeValueInPlace(t *testing.T) {
	const n = 2 << 20
	sp := newSegPair(t)
	sp.ev.keep = true
	cache := &sp.r.pool().segs
	check := func(payload []byte, segments bool) {
		t.Helper()
		cache.used = false
		sp.send(&segMsg{Data: payload})
		got := sp.ev.msgs[len(sp.ev.msgs)-1].Data
		require.True(t, bytes.Equal(payload, got), "%d-byte value differs", len(payload))
		require.Equal(t, len(got), cap(got), "the value's array is exactly its size")
		require.Equal(t, segments, cache.used, "%d-byte value grew in segments", len(payload))
		require.Zero(t, sp.r.budget.lent)
	}

	check(segPayload(n, 1), true)
	require.Equal(t, n, sp.r.budget.proven)
	check(segPayload(n, 2), false)
	check(segPayload(n/2+7, 3), false)
	allocated := allocatedBy(func() { sp.send(&segMsg{Data: segPayload(n, 4)}) }) - n // the payload made here
	require.Less(t, allocated, uint64(n+n/8), "bytes allocated to receive a %d-byte value", n)
	check(segPayload(n+1, 5), true)
	require.Equal(t, n+1, sp.r.budget.proven)

	for _, how := range []string{"close", "cancel"} {
		sp.sendPart(&segMsg{Data: segPayload(n, 6)}, n/2)
		require.Equal(t, n, sp.r.budget.lent, "the value under way was lent")
		if how == "close" {
			sp.r.releaseSlots()
		} else {
			require.NoError(t, sp.r.packet(appendCancelMessage(nil, sp.busySlot())))
		}
		require.Zero(t, sp.r.budget.lent, how)
		require.Zero(t, sp.r.budget.proven, "%s: an abandoned loan takes the proof away", how)
		check(segPayload(n, 7), true)
		check(segPayload(n, 8), false)
	}
}

// allocatedBy returns the bytes the process allocated while f ran.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestPlainLargeValuesAtOnce sends plain messages whose large values are
// under way at the same time (the writer interleaves their packets): once a
// value was delivered in full, two such values together are both lent
// their whole arrays at their start (no segment taken, the arrays allocated
// once), while a third at the same time grows in segments; the budget is
// all back after each round.
func TestPlainLargeValuesAtOnce(t *testing.T) {
	const n = 2 << 20
	sp := newSegPair(t)
	sp.ev.keep = true
	cache := &sp.r.pool().segs
	sp.send(&segMsg{Data: segPayload(n, 1)})
	require.Equal(t, n, sp.r.budget.proven)

	together := func(count int, seed byte) (segments bool, most int) {
		t.Helper()
		cache.used = false
		var want [][]byte
		for i := range count {
			p := segPayload(n, seed+byte(i))
			want = append(want, p)
			st := stubPool.Get().(*msgStub)
			st.msg, st.ti, st.state = &segMsg{Data: p}, sp.ti, OnPeer
			require.True(t, sp.w.enqueue(st))
		}
		first := len(sp.ev.msgs)
		for sp.w.hasOutput() {
			k, err := sp.w.fill(sp.buf)
			require.NoError(t, err)
			_, err = sp.r.feed(sp.buf[:k])
			require.NoError(t, err)
			most = max(most, sp.r.budget.lent)
		}
		got := sp.ev.msgs[first:]
		require.Len(t, got, count)
		for _, m := range got {
			i := slices.IndexFunc(want, func(p []byte) bool { return bytes.Equal(p, m.Data) })
			require.GreaterOrEqual(t, i, 0, "a value arrived changed")
			require.Equal(t, len(m.Data), cap(m.Data))
		}
		require.Zero(t, sp.r.budget.lent)
		return cache.used, most
	}
	segments, most := together(2, 10)
	require.False(t, segments, "two values at once grew in segments")
	require.Equal(t, 2*n, most, "both values were lent")
	allocated := allocatedBy(func() { together(2, 20) }) - 2*n // the payloads made there
	require.Less(t, allocated, uint64(2*n+n/4), "bytes allocated to receive two %d-byte values at once", n)
	segments, most = together(3, 30)
	require.True(t, segments, "a third value at once is not lent")
	require.Equal(t, 2*n, most, "never more than twice the proof lent")
}

// TestPlainLargeValuePrefaulted: the array lent to a plain large value is
// handed to buffers.Prefault, which faults its pages in on a goroutine of
// its own ahead of the value's bytes; a value that grows in segments (the
// connection's first) is not. The values arrive intact either way. It
// counts the arrays handed over (PrefaultCounts.Asked), not the jobs
// started: whether a job is free at that moment depends on the jobs other
// tests left running (TestPrefaultBounds checks that bound).
func TestPlainLargeValuePrefaulted(t *testing.T) {
	const n = 4 << 20
	sp := newSegPair(t)
	sp.ev.keep = true
	asked := func() uint64 { return buffers.PrefaultStats().Asked }
	for i, lent := range []bool{false, true, true} {
		a0 := asked()
		p := segPayload(n, byte(i))
		sp.send(&segMsg{Data: p})
		require.True(t, bytes.Equal(p, sp.ev.msgs[len(sp.ev.msgs)-1].Data), "value %d differs", i)
		if lent {
			require.EqualValues(t, 1, asked()-a0, "value %d: its lent array was not handed to buffers.Prefault", i)
		} else {
			require.Zero(t, asked()-a0, "value %d grew in segments: nothing to prefault", i)
		}
	}
}
