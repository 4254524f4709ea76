package serde

import (
	"strings"
	"unsafe"
)

// appendBounded appends chunk to b, the part received so far of a string or
// []byte value declared n bytes long, and returns the new b. The declared
// size is trusted only as far as the bytes received prove it:
//
//   - While the value is still short of half its declared size, a full b
//     is set aside in d.segs and a new b as long as everything received so
//     far takes its place: the value's arrays double in all (at most twice
//     the bytes received, plus the first 32 KiB), and no byte is copied
//     twice.
//   - Once n is at most twice the bytes received plus 32 KiB, one array of
//     exactly n bytes is allocated and the segments (at most about n/2
//     bytes) are copied into it; the rest of the value arrives straight in
//     it, and the complete value is that array with a capacity of exactly n.
//
// A value of n bytes thus costs n bytes of copying from the input plus at
// most n/2 bytes from the segments, and about 1.5n bytes of arrays in all.
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
		for i, s := range d.segs {
			nb = append(nb, s...)
			d.segs[i] = nil
		}
		d.segs, d.segLen = d.segs[:0], 0
		return append(nb, b...)
	}
	if len(b) > 0 {
		d.segs = append(d.segs, b)
		d.segLen += len(b)
	}
	return makeNoZero(int(min(max(received, maxBytesPrealloc), n-received)))
}

// dropSegments forgets the segments of an abandoned value.
func (d *Decoder) dropSegments() {
	clear(d.segs)
	d.segs, d.segLen = d.segs[:0], 0
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
