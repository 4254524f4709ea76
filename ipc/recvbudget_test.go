package ipc

import (
	"bytes"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

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
		awaitAhead(t, &sp.r.budget)
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
	allocated := allocatedBy(func() { // the payload made here, and the next value's array ahead
		sp.send(&segMsg{Data: segPayload(n, 4)})
		awaitAhead(t, &sp.r.budget)
	}) - n
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
		awaitAhead(t, &sp.r.budget)
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
	// The first value grows in segments: nothing to prefault. The second
	// is lent an array allocated on the reader's goroutine, handed to
	// Prefault, and the next value's array is allocated ahead and
	// prefaulted on a goroutine of its own; the third takes that array
	// (prefaulted already) and starts the next ahead.
	for i, want := range []uint64{0, 2, 1} {
		a0 := asked()
		p := segPayload(n, byte(i))
		sp.send(&segMsg{Data: p})
		awaitAhead(t, &sp.r.budget)
		require.True(t, bytes.Equal(p, sp.ev.msgs[len(sp.ev.msgs)-1].Data), "value %d differs", i)
		require.Equal(t, want, asked()-a0, "value %d: arrays handed to buffers.Prefault", i)
	}
}

// awaitAhead waits until the arrays b allocates ahead are done.
func awaitAhead(t testing.TB, b *recvBudget) {
	t.Helper()
	for _, a := range []*buffers.Ahead{b.ahead, b.orphan} {
		if a == nil {
			continue
		}
		select {
		case <-a.Done():
		case <-time.After(time.Minute):
			t.Fatal("an array allocated ahead was not done")
		}
	}
}

// loopArrays returns how many arrays of n bytes or more were allocated
// under serde's Decoder.startLarge (on the goroutine that decodes: the
// event loop in a service) while f ran, from the heap profile.
func loopArrays(t *testing.T, n int, f func()) int {
	t.Helper()
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = rate }()
	count := func() int {
		for range 3 { // the profile is published by collections
			runtime.GC()
		}
		recs := make([]runtime.MemProfileRecord, 1024)
		k, ok := runtime.MemProfile(recs, true)
		for !ok {
			recs = make([]runtime.MemProfileRecord, k+1024)
			k, ok = runtime.MemProfile(recs, true)
		}
		total := 0
		for _, r := range recs[:k] {
			if r.AllocObjects == 0 || r.AllocBytes/r.AllocObjects < int64(n) {
				continue
			}
			frames := runtime.CallersFrames(r.Stack())
			for {
				fr, more := frames.Next()
				if strings.HasSuffix(fr.Function, "serde.(*Decoder).startLarge") {
					total += int(r.AllocObjects)
					break
				}
				if !more {
					break
				}
			}
		}
		return total
	}
	before := count()
	f()
	return count() - before
}

// TestPlainLargeValueArrayOffLoop: once the connection proved a size, the
// array of each next value of about that size is allocated ahead, off the
// decoding goroutine (an allocation there may start a garbage-collection
// cycle on the event loop), and the value arrives intact in it, exactly its
// size. A value of another size allocates its own, as before.
func TestPlainLargeValueArrayOffLoop(t *testing.T) {
	const n = 2 << 20
	sp := newSegPair(t)
	sp.ev.keep = true
	sendAll := func(size int, seed byte) {
		t.Helper()
		p := segPayload(size, seed)
		sp.send(&segMsg{Data: p})
		awaitAhead(t, &sp.r.budget)
		got := sp.ev.msgs[len(sp.ev.msgs)-1].Data
		require.True(t, bytes.Equal(p, got), "%d-byte value differs", size)
		require.Equal(t, len(got), cap(got), "the value's array is exactly its size")
	}
	sendAll(n, 1) // grows in segments, proves n
	require.Equal(t, 1, loopArrays(t, n, func() { sendAll(n, 2) }), "the first lent array is the loop's")
	for i := range 3 {
		require.Zero(t, loopArrays(t, n, func() { sendAll(n, byte(10+i)) }), "value %d: array allocated on the decoding goroutine", i)
	}
	require.Zero(t, loopArrays(t, n-n/8, func() { sendAll(n-n/8, 20) }), "an eighth smaller takes the array ahead")
	require.Equal(t, 1, loopArrays(t, n/2, func() { sendAll(n/2, 21) }), "a value of another size allocates its own")
}

// TestRecvBudgetAhead pins the array ahead against the trust rule: it
// starts only while a lent value is under way and counts with the loans,
// a value that does not fit it drops it when the room is needed, and the
// loss of the proof drops it.
func TestRecvBudgetAhead(t *testing.T) {
	const n = 2 << 20
	var b recvBudget
	b.End(n, n, false)
	lend := func(size int) []byte {
		t.Helper()
		require.True(t, b.Lend(size))
		a := b.Array(size)
		if a == nil {
			a = make([]byte, 0, size)
		}
		b.Lent(a)
		require.LessOrEqual(t, b.lent+b.aheadN, recvBudgetValues*b.proven, "the rule counts the array ahead")
		return a
	}
	lend(n)
	require.NotNil(t, b.ahead, "an array ahead beside the value under way")
	require.Equal(t, n, b.aheadN)
	awaitAhead(t, &b)
	a := lend(n)
	require.Equal(t, n, cap(a))
	require.Nil(t, b.ahead, "no room for another: two values lent")
	require.False(t, b.Lend(n/2))
	b.End(n, n, true)
	require.Nil(t, b.ahead, "none started as a value ends")
	b.End(n, n, true)
	lend(n)
	require.Nil(t, b.ahead, "none after values overlapped")
	b.End(n, n, true)
	lend(n)
	require.NotNil(t, b.ahead, "again once a value was alone")
	awaitAhead(t, &b)
	b.End(n, n, true)
	require.NotNil(t, b.ahead, "kept while idle")
	lend(n / 2) // does not fit the array ahead, but fits beside it
	require.Equal(t, n, b.aheadN)
	b.End(n/2, n/2, true)
	require.Equal(t, n, b.aheadN)
	lend(n)
	awaitAhead(t, &b)
	require.NotNil(t, b.ahead)
	require.True(t, b.Lend(n-n/4), "a value of another size drops the array ahead to get its room")
	require.Nil(t, b.ahead)
	b.End(n-n/4, 1, true)
	require.Zero(t, b.proven)
	require.Nil(t, b.ahead, "no proof, no array ahead")
	b.End(n, n, true)
	require.Zero(t, b.lent)
}
