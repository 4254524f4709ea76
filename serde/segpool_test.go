package serde_test

import (
	"bytes"
	"fmt"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/serde"
)

// recPool is a SegmentPool that records what the decoder does with it: the
// sizes asked for, the arrays it lent or got back (all of them, to check
// that none reaches a value), and it fills every array it keeps with junk,
// so that a value that still referred to a segment would show it.
type recPool struct {
	free     map[int][][]byte
	arrays   map[*byte]int // every array seen, by its first byte: its capacity
	taken    int           // TakeSegment calls
	put      int           // PutSegment calls
	sizes    []int         // sizes asked for since the last clear
	junk     byte
	wrongCap bool // lend arrays one byte too long (the decoder must refuse them)
	always   bool // never out of arrays: lend a new one when none is free
}

func newRecPool() *recPool {
	return &recPool{free: map[int][][]byte{}, arrays: map[*byte]int{}, junk: 0xA5}
}

func (p *recPool) TakeSegment(size int) []byte {
	p.taken++
	p.sizes = append(p.sizes, size)
	if p.wrongCap {
		s := make([]byte, 0, size+1)
		p.arrays[unsafe.SliceData(s)] = size + 1
		return s
	}
	l := p.free[size]
	if len(l) == 0 && p.always {
		s := make([]byte, 0, size)
		p.arrays[unsafe.SliceData(s)] = size
		return s
	}
	if len(l) == 0 {
		return nil
	}
	s := l[len(l)-1]
	p.free[size] = l[:len(l)-1]
	return s[:0]
}

func (p *recPool) PutSegment(b []byte) {
	p.put++
	full := b[:cap(b)]
	p.arrays[unsafe.SliceData(full)] = cap(full)
	p.junk++
	fill(full, []byte{p.junk})
	p.free[cap(full)] = append(p.free[cap(full)], full)
}

// overlaps reports whether b's array overlaps an array the pool has seen.
func (p *recPool) overlaps(b []byte) bool {
	if cap(b) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	hi := lo + uintptr(cap(b))
	for a, n := range p.arrays {
		alo := uintptr(unsafe.Pointer(a))
		if lo < alo+uintptr(n) && alo < hi {
			return true
		}
	}
	return false
}

// patterned returns n bytes of a pattern with a prime period (251), so
// that bytes moved by a multiple of any segment size show.
func patterned(n int, seed byte) []byte {
	unit := make([]byte, 251)
	for i := range unit {
		unit[i] = byte(i*7) ^ seed
	}
	b := make([]byte, n)
	fill(b, unit)
	return b
}

// fill repeats unit over b (doubling copies: fast under -race).
func fill(b, unit []byte) {
	k := copy(b, unit)
	for k < len(b) {
		k += copy(b[k:], b[:k])
	}
}

// TestDecodeSegmentPoolReuse decodes []byte and string values of many
// sizes, in pieces of several sizes, one after another with one decoder and
// one pool, so that later values grow in the (junk-filled) segments of
// earlier ones: every value must arrive intact (checked again after all of
// them, when the pool has refilled its arrays with junk many times), no
// value's array may overlap an array the pool lent or got back, and every
// segment taken must come back when its value completes.
func TestDecodeSegmentPoolReuse(t *testing.T) {
	lim := serde.Limits{MaxString: 1 << 30}
	sizes := []int{100_000, 1<<20 + 3, 40_000, 3<<20 - 7, 32<<10 + 1, 5 << 20, 1 << 20, 200_001}
	pieces := []int{4093, 64 << 10, 1<<20 + 1}
	d := serde.NewDecoder(nil, lim)
	p := newRecPool()
	d.SetSegmentPool(p)
	type result struct {
		want []byte
		b    *bytesMsg
		s    *strMsg
	}
	var results []result
	for round := range 2 {
		for i, n := range sizes {
			payload := patterned(n, byte(round*16+i))
			piece := pieces[(i+round)%len(pieces)]
			wireB := encodeAll(t, serde.NewEncoder(nil, lim), &bytesMsg{B: payload}, 64<<10)
			wireS := encodeAll(t, serde.NewEncoder(nil, lim), &strMsg{S: string(payload)}, 64<<10)
			start := []int{0, 40_000}[i%2] // the message's own first array
			b := &bytesMsg{B: make([]byte, 0, start)}
			decodePieces(t, d, b, wireB, piece)
			require.Equal(t, p.taken, p.put, "round %d, %d bytes: segments taken and given back", round, n)
			require.True(t, bytes.Equal(payload, b.B), "round %d, []byte of %d bytes differs", round, n)
			s := &strMsg{}
			decodePieces(t, d, s, wireS, piece)
			require.Equal(t, p.taken, p.put, "round %d, %d-byte string: segments taken and given back", round, n)
			require.True(t, s.S == string(payload), "round %d, string of %d bytes differs", round, n)
			results = append(results, result{payload, b, s})
		}
	}
	require.Positive(t, p.taken)
	require.Less(t, len(p.arrays), p.taken, "segments were reused")
	for i, r := range results {
		require.True(t, bytes.Equal(r.want, r.b.B), "value %d: []byte changed after later values", i)
		require.True(t, r.s.S == string(r.want), "value %d: string changed after later values", i)
		require.False(t, p.overlaps(r.b.B), "value %d: the []byte's array is a segment", i)
		require.False(t, p.overlaps(unsafe.Slice(unsafe.StringData(r.s.S), len(r.s.S))), "value %d: the string's array is a segment", i)
	}
}

// TestDecodeSegmentPoolAbandoned resets the decoder in the middle of a
// large value: the segments set aside come back to the pool; the []byte
// field keeps the one segment it is growing in (the pool must never lend
// an array a value refers to), a string's goes back too.
func TestDecodeSegmentPoolAbandoned(t *testing.T) {
	lim := serde.Limits{MaxString: 1 << 30}
	const n = 4 << 20
	payload := patterned(n, 3)
	for _, tc := range []struct {
		name string
		msg  serde.Type
		root func() serde.Type
		kept int // segments the abandoned value keeps
	}{
		{"bytes", &bytesMsg{B: payload}, func() serde.Type { return &bytesMsg{} }, 1},
		{"string", &strMsg{S: string(payload)}, func() serde.Type { return &strMsg{} }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wire := encodeAll(t, serde.NewEncoder(nil, lim), tc.msg, 64<<10)
			d := serde.NewDecoder(nil, lim)
			p := newRecPool()
			d.SetSegmentPool(p)
			root := tc.root()
			d.Reset(root)
			_, done, err := d.Decode(wire[:n/4]) // short of half: segments only
			require.NoError(t, err)
			require.False(t, done)
			require.Greater(t, p.taken, 2)
			require.Zero(t, p.put)
			d.Reset(tc.root())
			require.Equal(t, p.taken-tc.kept, p.put, "segments given back on Reset")
			if b, ok := root.(*bytesMsg); ok {
				require.False(t, p.overlaps(b.B), "the abandoned field's array was given back")
			}
			// The decoder works on, with the pool's arrays.
			got := tc.root()
			decodePieces(t, d, got, wire, 64<<10)
			if b, ok := got.(*bytesMsg); ok {
				require.True(t, bytes.Equal(payload, b.B))
			} else {
				require.True(t, got.(*strMsg).S == string(payload))
			}
		})
	}
}

// TestDecodeSegmentPoolTrust: a pool full of arrays of every size does not
// let the decoder run ahead of the bytes received. A 1 GiB value is
// declared and 256 KiB sent; the segments asked for must total at most
// twice the bytes received plus 32 KiB. Arrays of the wrong capacity are
// refused.
func TestDecodeSegmentPoolTrust(t *testing.T) {
	lim := serde.Limits{MaxString: 2 << 30}
	wire := serde.AppendCross(nil, 1<<30)
	wire = append(wire, make([]byte, 256<<10)...)
	for _, wrong := range []bool{false, true} {
		for _, root := range []serde.Type{&bytesMsg{}, &strMsg{}} {
			t.Run(fmt.Sprintf("%T/wrongCap=%v", root, wrong), func(t *testing.T) {
				d := serde.NewDecoder(nil, lim)
				p := newRecPool()
				p.wrongCap, p.always = wrong, true
				d.SetSegmentPool(p)
				d.Reset(root)
				var sum int
				for off := 0; off < len(wire); off += 4 << 10 {
					_, done, err := d.Decode(wire[off:min(off+4<<10, len(wire))])
					require.NoError(t, err)
					require.False(t, done)
				}
				for _, s := range p.sizes {
					sum += s
				}
				require.LessOrEqual(t, sum, 2*(256<<10)+(32<<10), "segments asked for: %v", p.sizes)
				require.NotEmpty(t, p.sizes)
			})
		}
	}
}

// TestDecodeSegmentPoolNoAlloc: with a pool, decoding a large value
// allocates its final array only (the segments come from the pool), where
// without one every segment is a new allocation.
func TestDecodeSegmentPoolNoAlloc(t *testing.T) {
	lim := serde.Limits{MaxString: 1 << 30}
	const n = 1 << 20
	wire := encodeAll(t, serde.NewEncoder(nil, lim), &bytesMsg{B: patterned(n, 1)}, 64<<10)
	first := make([]byte, 0, 32<<10) // the message's first array, as a recycled one
	m := &bytesMsg{}
	decode := func(d *serde.Decoder) {
		m.B = first
		d.Reset(m)
		for off := 0; off < len(wire); off += 64 << 10 {
			if _, _, err := d.Decode(wire[off:min(off+64<<10, len(wire))]); err != nil {
				t.Fatal(err)
			}
		}
	}
	plain := serde.NewDecoder(nil, lim)
	decode(plain)
	without := testing.AllocsPerRun(20, func() { decode(plain) })
	pooled := serde.NewDecoder(nil, lim)
	p := newRecPool()
	pooled.SetSegmentPool(p)
	decode(pooled)
	with := testing.AllocsPerRun(20, func() { decode(pooled) })
	require.Equal(t, 1.0, with, "allocations per 1 MiB value with a pool (the final array)")
	require.Greater(t, without, 3.0, "allocations per 1 MiB value without a pool")
}
