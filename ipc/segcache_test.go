package ipc

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/internal/clock"
	"github.com/ipcframe/ipcframe/serde"
)

// segMsg is a plain message (not Recyclable) with one []byte field.
type segMsg struct{ Data []byte }

func (m *segMsg) Serde(v *serde.Visitor) { v.Bytes(&m.Data) }

// segCut is segMsg as a second message type.
type segCut struct{ Data []byte }

func (m *segCut) Serde(v *serde.Visitor) { v.Bytes(&m.Data) }

// segLiar is what a lying peer sends for segMsg: a declared size, then a
// shorter []byte, so that the receiver's value is cut short by the end of
// the message.
type segLiar struct {
	Declared uint64
	Data     []byte
}

func (m *segLiar) Serde(v *serde.Visitor) {
	v.Cross(&m.Declared)
	v.Bytes(&m.Data)
}

// segPayload returns n bytes of a pattern with a prime period.
func segPayload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range min(n, 251) {
		b[i] = byte(i*7) ^ seed
	}
	for k := min(n, 251); k < n; {
		k += copy(b[k:], b[:k])
	}
	return b
}

// arraySet records byte arrays by address range.
type arraySet map[uintptr]uintptr // start: end

func (s arraySet) add(b []byte) {
	if cap(b) > 0 {
		lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		s[lo] = lo + uintptr(cap(b))
	}
}

func (s arraySet) overlaps(b []byte) bool {
	if cap(b) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	hi := lo + uintptr(cap(b))
	for alo, ahi := range s {
		if lo < ahi && alo < hi {
			return true
		}
	}
	return false
}

// TestSegCacheBoundAndIdle: the cache holds at most half of MaxString and
// never more than segCacheMax, lends only arrays of exactly the size asked
// for, tells the loop when it starts holding, and empties itself at the
// first idle check after a whole period without use.
func TestSegCacheBoundAndIdle(t *testing.T) {
	for _, tc := range []struct {
		maxString uint64
		want      int
	}{
		{0, segCacheMax}, // the default MaxString, 64 MiB
		{serde.DefaultMaxString, segCacheMax},
		{1 << 30, segCacheMax},
		{8 << 20, 4 << 20},
		{1, 0},
	} {
		var p codecPool
		p.initCodecs(nil, serde.Limits{MaxString: tc.maxString})
		require.Equal(t, tc.want, p.segs.max, "MaxString %d", tc.maxString)
	}

	var c segCache
	c.init(8 << 20) // holds 4 MiB
	holds := 0
	c.onHold = func() { holds++ }
	require.Nil(t, c.TakeSegment(1<<20))
	c.PutSegment(make([]byte, 1<<20))
	c.PutSegment(make([]byte, 2<<20))
	c.PutSegment(make([]byte, 2<<20)) // past the bound: dropped
	c.PutSegment(make([]byte, 512<<10))
	require.Equal(t, 1, holds)
	require.Equal(t, 3<<20+512<<10, c.held)
	require.Nil(t, c.TakeSegment(4<<20))
	s := c.TakeSegment(2 << 20)
	require.Equal(t, 2<<20, cap(s))
	require.Empty(t, s)
	require.Nil(t, c.TakeSegment(2<<20), "only one was kept")
	require.Equal(t, 1<<20+512<<10, c.held)

	require.True(t, c.releaseIfIdle(), "used in this period: kept")
	require.True(t, c.releaseIfIdle() == false && c.held == 0 && c.free == nil, "a whole period unused: emptied")
	c.PutSegment(s)
	require.Equal(t, 2, holds, "holding again")
	require.True(t, c.releaseIfIdle())
	require.False(t, c.releaseIfIdle())
	require.False(t, c.releaseIfIdle(), "empty")
}

// segEvents keeps every message the reader delivers.
type segEvents struct {
	allocEvents
	msgs []*segMsg
	keep bool
}

func (e *segEvents) onMessage(_ *msgHeader, m Message) {
	e.got++
	if e.keep {
		e.msgs = append(e.msgs, m.(*segMsg))
	}
}

// segPair is a writer and a reader without a socket, with the reader's own
// codec pool (and so its own segment cache).
type segPair struct {
	t   *testing.T
	cfg Config
	w   *writer
	r   *reader
	ev  *segEvents
	ti  *typeInfo
	buf []byte
}

func newSegPair(t *testing.T) *segPair {
	p := NewProtocol()
	require.NoError(t, Register[segMsg](p, 1, nil))
	cfg, err := Config{Protocol: p}.withDefaults()
	require.NoError(t, err)
	sp := &segPair{t: t, cfg: cfg, w: newWriter(&cfg), ev: &segEvents{}, ti: p.byID[1], buf: make([]byte, 64<<10)}
	sp.r = newReader(&sp.cfg, sp.ev)
	return sp
}

// send passes m through whole.
func (sp *segPair) send(m *segMsg) { sendThrough(sp.t, sp.w, sp.r, m, sp.ti, sp.buf) }

// sendPart queues m and feeds the reader about n bytes of it; the rest is
// never sent (the writer is replaced).
func (sp *segPair) sendPart(m *segMsg, n int) {
	st := stubPool.Get().(*msgStub)
	st.msg, st.ti, st.state = m, sp.ti, OnPeer
	require.True(sp.t, sp.w.enqueue(st))
	for fed := 0; fed < n && sp.w.hasOutput(); {
		k, err := sp.w.fill(sp.buf)
		require.NoError(sp.t, err)
		_, err = sp.r.feed(sp.buf[:k])
		require.NoError(sp.t, err)
		fed += k
	}
	sp.w = newWriter(&sp.cfg)
}

// busySlot returns the reader slot whose message is arriving.
func (sp *segPair) busySlot() uint32 {
	for i, s := range sp.r.slots {
		if s != nil {
			return uint32(i)
		}
	}
	sp.t.Fatal("no message arriving")
	return 0
}

// TestSegCacheReaderReuse sends plain messages with []byte values of many
// sizes through a writer and a reader: later values grow in the segments
// of earlier ones, which the test fills with junk after every message.
// Every value must arrive intact (checked again at the end), no delivered
// value's array may be an array the cache ever held, and the cache stays
// within its bound.
func TestSegCacheReaderReuse(t *testing.T) {
	sp := newSegPair(t)
	sp.ev.keep = true
	cache := &sp.r.pool().segs
	seen := arraySet{}
	var want [][]byte
	junk := byte(0)
	for round := range 2 {
		for i, n := range []int{3<<20 + 5, 100_000, 1 << 20, 40_000, 700_001, 2 << 20} {
			payload := segPayload(n, byte(16*round+i))
			want = append(want, payload)
			sp.send(&segMsg{Data: payload})
			got := sp.ev.msgs[len(sp.ev.msgs)-1].Data
			require.True(t, bytes.Equal(payload, got), "round %d: %d-byte value differs", round, n)
			require.False(t, seen.overlaps(got), "round %d: the %d-byte value's array was a cached segment", round, n)
			require.LessOrEqual(t, cache.held, cache.max)
			for _, s := range cache.free {
				seen.add(s)
				junk++
				full := s[:cap(s)]
				full[0] = junk
				for k := 1; k < len(full); {
					k += copy(full[k:], full[:k])
				}
			}
		}
	}
	require.Positive(t, cache.held)
	for i, m := range sp.ev.msgs {
		require.True(t, bytes.Equal(want[i], m.Data), "value %d changed after later values", i)
		require.False(t, seen.overlaps(m.Data), "value %d's array was a cached segment", i)
	}
}

// TestSegCacheNoAllocations: once the cache holds the segments, a plain
// message with a large []byte allocates the same whatever the value's size
// (the message, its first 32 KiB and its final array): its segments cost
// nothing. Without the cache each segment is an allocation. The reader
// forgets the size it has seen delivered before each message, so that the
// value grows in segments (recvbudget.go).
func TestSegCacheNoAllocations(t *testing.T) {
	allocs := func(n int, cache bool) float64 {
		sp := newSegPair(t)
		if !cache {
			sp.r.pool().segs.max = 0
		}
		m := &segMsg{Data: segPayload(n, 1)}
		sp.send(m)
		return testing.AllocsPerRun(10, func() {
			sp.r.budget = recvBudget{}
			sp.send(m)
		})
	}
	small, large := allocs(1<<20, true), allocs(4<<20, true)
	smallNo, largeNo := allocs(1<<20, false), allocs(4<<20, false)
	// A GC during a round empties the sync.Pools the messages come from
	// (each round allocates a fresh final array, so a GC can fall in any
	// round), and under -race sync.Pool also drops a quarter of what is put
	// back and a GC can make a pool allocate its per-P array again
	// (sync.Pool.pinSlow): all only add allocations, in some rounds and not
	// others (CI once read 6 for the 1 MiB value with the cache, without
	// -race, where 3 is exact). While an assertion below would fail,
	// measure all four again, up to three more times, and keep the least of
	// each: a real per-segment allocation is in every measurement.
	fails := func() bool { return large > small+1 || largeNo-large < 5 || smallNo-small < 3 }
	for try := 1; fails() && try < 4; try++ {
		small, large = min(small, allocs(1<<20, true)), min(large, allocs(4<<20, true))
		smallNo, largeNo = min(smallNo, allocs(1<<20, false)), min(largeNo, allocs(4<<20, false))
	}
	t.Logf("allocations per message: 1 MiB %.1f, 4 MiB %.1f; without the cache %.1f, %.1f", small, large, smallNo, largeNo)
	// The decoder alone is pinned exactly (serde TestDecodeSegmentPoolNoAlloc).
	require.LessOrEqual(t, large, small+1, "a larger value (more segments) allocates more")
	require.GreaterOrEqual(t, largeNo-large, 5.0, "segments of a 4 MiB value without the cache")
	require.GreaterOrEqual(t, smallNo-small, 3.0, "segments of a 1 MiB value without the cache")
}

// TestSegCacheAbandonedValues: a value cut by a CancelMessage, or by its
// connection's close (reader.releaseSlots), gives its segments back to
// the cache; the []byte field keeps only the array it was growing in.
func TestSegCacheAbandonedValues(t *testing.T) {
	const n = 16 << 20
	for _, how := range []string{"cancel", "close"} {
		t.Run(how, func(t *testing.T) {
			sp := newSegPair(t)
			cache := &sp.r.pool().segs
			sp.sendPart(&segMsg{Data: segPayload(n, 2)}, 3<<20)
			slot := sp.busySlot()
			require.Zero(t, cache.held, "no value completed yet")
			if how == "cancel" {
				require.NoError(t, sp.r.packet(appendCancelMessage(nil, slot)))
			} else {
				sp.r.releaseSlots()
			}
			require.Nil(t, sp.r.slot(slot))
			// 3 MiB received: segments of 32 KiB ... 1 MiB set aside (the
			// first 32 KiB array is the message's), the 2 MiB one in use.
			require.Equal(t, 2<<20-32<<10, cache.held)
			// The next value grows in them.
			sp.send(&segMsg{Data: segPayload(4<<20, 3)})
			require.Equal(t, 1, sp.ev.got)
		})
	}
}

// TestSegCacheOnLoop runs the cache in a service: a large plain message
// leaves its segments in its loop's cache (none of them in the message),
// the next one reuses them, the cache empties itself after two idle
// periods of the service's clock, and a connection closed in the middle of
// a value (a peer lying about the value's size) gives the value's segments
// back.
func TestSegCacheOnLoop(t *testing.T) {
	clk := clock.NewManual(time.Unix(1_000_000, 0))
	type seen struct {
		ls      *loopState
		held    int
		intact  bool
		overlap bool
	}
	got := make(chan seen, 4)
	stopped := make(chan error, 4)
	want := segPayload(8<<20, 5)
	sp := NewProtocol()
	require.NoError(t, Register(sp, 1, func(ctx Context, m *segMsg) {
		// On the loop: report, the test checks.
		ls := ctx.c.ls
		s := seen{ls: ls, held: ls.codecs.segs.held, intact: bytes.Equal(m.Data, want)}
		for _, b := range ls.codecs.segs.free {
			set := arraySet{}
			set.add(b)
			s.overlap = s.overlap || set.overlaps(m.Data)
		}
		got <- s
	}))
	require.NoError(t, Register[segCut](sp, 2, nil))
	server, err := NewService(Config{
		Protocol: sp, Listen: "127.0.0.1:0", Clock: clk,
		ConnectionStop: func(_ ConnInfo, err error) { stopped <- err },
	})
	require.NoError(t, err)
	require.NoError(t, server.Start())
	cp := NewProtocol()
	require.NoError(t, Register[segMsg](cp, 1, nil))
	require.NoError(t, Register[segLiar](cp, 2, nil))
	client, err := NewService(Config{Protocol: cp})
	require.NoError(t, err)
	require.NoError(t, client.Start())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, client.Stop(ctx))
		require.NoError(t, server.Stop(ctx))
	})
	addr := server.Addr().String()
	send := func(m Message) {
		t.Helper()
		done := make(chan error, 1)
		require.NoError(t, client.Send(addr, m, 0, func(err error) { done <- err }))
		require.NoError(t, <-done)
	}
	deadline := time.After(time.Minute)
	// onLoop runs f on ls's loop and waits for it.
	onLoop := func(ls *loopState, f func()) {
		t.Helper()
		done := make(chan struct{})
		require.NoError(t, ls.loop.Execute(func() { f(); close(done) }))
		select {
		case <-done:
		case <-deadline:
			t.Fatal("the loop did not run the check")
		}
	}

	send(&segMsg{Data: want})
	first := <-got
	require.True(t, first.intact)
	require.False(t, first.overlap, "the message's array is in the cache")
	// 8 MiB: segments of 32 KiB ... 2 MiB came back (the first 32 KiB
	// array is the message's own).
	require.Equal(t, 4<<20-32<<10, first.held)
	send(&segMsg{Data: want})
	second := <-got
	require.True(t, second.intact)
	require.False(t, second.overlap)
	require.Same(t, first.ls, second.ls, "one connection, one loop")
	require.Equal(t, first.held, second.held, "the second value reused the segments")
	ls := first.ls

	// Idle: the first check sees the period's use, the second empties it.
	held := func() (h int) { onLoop(ls, func() { h = ls.codecs.segs.held }); return h }
	clk.Advance(segCacheIdle)
	require.Equal(t, first.held, held(), "used in the period: kept")
	clk.Advance(segCacheIdle)
	require.Zero(t, held(), "a whole period unused: emptied")
	var armed bool
	onLoop(ls, func() { armed = ls.segTimer != nil })
	require.False(t, armed, "the idle check stays off while the cache is empty")

	// A value cut short: 64 MiB declared (MaxString), 8 MiB sent, then the
	// message ends; the server closes the connection.
	send(&segLiar{Declared: 64 << 20, Data: want})
	err = <-stopped
	require.True(t, errors.Is(err, ErrBadChunk), "closed with %v", err)
	require.Equal(t, 8<<20-32<<10, held(), "the cut value's segments (32 KiB ... 4 MiB) came back")
}
