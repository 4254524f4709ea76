package serde

import (
	"strings"
	"unsafe"
)

// SegmentPool lends a [Decoder] the arrays it collects a large string or
// []byte value in before the value has proven half its declared size (the
// segments, see [Decoder]), and takes them back when the decoder is done
// with them. A pool lets a decoder that decodes one large value after
// another reuse the same segments instead of allocating (and faulting in)
// new memory for each value; it does not change how far ahead of the bytes
// received the decoder may hold memory, since it asks for exactly the
// sizes it would have allocated.
//
// Its methods are called on the decoding goroutine.
type SegmentPool interface {
	// TakeSegment returns an empty slice whose capacity is exactly size,
	// or nil when the pool has none (the decoder then allocates one). The
	// array's bytes may be anything: the decoder reads only bytes it
	// wrote. A slice of another capacity is dropped and the decoder
	// allocates.
	TakeSegment(size int) []byte
	// PutSegment gives back a segment the decoder no longer refers to:
	// one it took from the pool or allocated as a segment, once its bytes
	// were copied into the value's final array or its value was abandoned
	// (Reset before the value completed). The decoder never gives back
	// an array that a decoded value refers to: the value's first array
	// (which may be the caller's, as in a recycled message), its final
	// array, and the array an abandoned []byte field holds stay with the
	// value. The pool may keep b for a later TakeSegment or drop it.
	PutSegment(b []byte)
}

// SetSegmentPool makes the decoder take its segments from p and give them
// back to it; nil (the default) makes it allocate each segment and leave
// it to the garbage collector. The pool survives Reset. Segments never
// reach a decoded value: a grown value always ends in one array of its
// declared size, allocated for it.
func (d *Decoder) SetSegmentPool(p SegmentPool) { d.segPool = p }

// appendBounded appends chunk to b, the part received so far of a string or
// []byte value declared n bytes long, and returns the new b. The declared
// size is trusted only as far as the bytes received prove it:
//
//   - While the value is still short of half its declared size, a full b
//     is set aside in d.segs and a new b as long as everything received so
//     far takes its place: the value's arrays double in all (at most twice
//     the bytes received, plus the first 32 KiB), and no byte is copied
//     twice. These arrays are the segments; with a SegmentPool they come
//     from it.
//   - Once n is at most twice the bytes received plus 32 KiB, one array of
//     exactly n bytes is allocated and the segments (at most about n/2
//     bytes) are copied into it; the rest of the value arrives straight in
//     it, and the complete value is that array with a capacity of exactly n.
//     The segments go back to the pool.
//
// A value of n bytes thus costs n bytes of copying from the input plus at
// most n/2 bytes from the segments, and about 1.5n bytes of arrays in all.
// A value whose array a ValueBudget lent (budget.go) starts with capacity
// n and never grows: n bytes of copying, n bytes of array.
// No array is zeroed (makeNoZero): every byte of it that is read was first
// written, so zeroing would only add another pass over the memory.
func (d *Decoder) appendBounded(b, chunk []byte, n uint64) []byte {
	for len(chunk) > 0 {
		if len(b) == cap(b) {
			b = d.growValue(b, len(chunk), n)
		}
		k := copy(b[len(b):cap(b)], chunk)
		b = b[:len(b)+k]
		chunk = chunk[k:]
	}
	return b
}

// growValue returns the array the next bytes of the value go to, b being
// full and pending more bytes waiting (see appendBounded).
func (d *Decoder) growValue(b []byte, pending int, n uint64) []byte {
	received := uint64(d.segLen + len(b))
	if n <= 2*(received+uint64(pending))+maxBytesPrealloc {
		// Close to twice the bytes received: take the whole value.
		nb := makeNoZero(int(n))
		for _, s := range d.segs {
			nb = append(nb, s...)
		}
		nb = append(nb, b...)
		if d.segCur {
			d.putSegment(b)
		}
		d.dropSegments()
		return nb
	}
	if len(b) > 0 {
		if !d.segCur {
			d.segFirst = true // the value's first array: never given back
		}
		d.segs = append(d.segs, b)
		d.segLen += len(b)
	}
	d.segCur = true
	size := int(min(max(received, maxBytesPrealloc), n-received))
	if d.segPool != nil {
		if s := d.segPool.TakeSegment(size); cap(s) == size {
			return s[:0]
		}
	}
	return makeNoZero(size)
}

// putSegment gives s back to the pool, if there is one.
func (d *Decoder) putSegment(s []byte) {
	if d.segPool != nil {
		d.segPool.PutSegment(s)
	}
}

// dropSegments gives back the segments set aside for the current value
// (all but the value's own first array) and forgets them: the value is
// complete or abandoned. The array the value is growing in (b, when
// d.segCur) is the caller's business.
func (d *Decoder) dropSegments() {
	for i, s := range d.segs {
		if i > 0 || !d.segFirst {
			d.putSegment(s)
		}
	}
	clear(d.segs)
	d.segs, d.segLen, d.segFirst, d.segCur = d.segs[:0], 0, false, false
}

// makeNoZero returns an empty []byte with capacity c whose array is not
// zeroed: its bytes are whatever the heap held. Only the bytes a caller
// appends are ever read (values are handed out as b[:len(b)]), and the
// bytes between len and cap are stale heap data of this process, not of
// the peer.
//
// strings.Builder.Grow is the standard library's way to allocate without
// zeroing (internal/bytealg.MakeNoZero); the builder is dropped here and
// its array, never seen as a string by anyone, becomes the slice's.
func makeNoZero(c int) []byte {
	var sb strings.Builder
	sb.Grow(c)
	sb.WriteByte(0) // a non-empty string, so that StringData is the array
	s := sb.String()
	return unsafe.Slice(unsafe.StringData(s), c)[:0]
}
