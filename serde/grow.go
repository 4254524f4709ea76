package serde

import (
	"strings"
	"unsafe"
)

// appendBounded appends chunk to b, a value declared n bytes long. When b
// must grow, its capacity doubles (at least to fit chunk) but never exceeds
// n: the declared size is trusted only up to twice the bytes received plus
// 32 KiB, and a complete value ends with a capacity of exactly n. The new
// array is not zeroed (makeNoZero): its first len(b) bytes are copied from
// b and the rest is written by this append and the ones after it, so
// zeroing it would only double the memory traffic of a large value.
func appendBounded(b, chunk []byte, n uint64) []byte {
	if need := len(b) + len(chunk); need > cap(b) {
		c := min(uint64(max(2*cap(b), need, maxBytesPrealloc)), n)
		if n <= 2*uint64(need)+maxBytesPrealloc {
			c = n // close to twice the bytes received: take the whole value
		}
		nb := makeNoZero(int(max(c, uint64(need))))[:len(b)]
		copy(nb, b)
		b = nb
	}
	return append(b, chunk...)
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
