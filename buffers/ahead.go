package buffers

import (
	"strings"
	"unsafe"
)

// Arrays allocated ahead (issue 8, docs/benchmarks.md "The next value's
// array off the loop, sixteenth session").
//
// An event loop that allocates a large value's array (a plain message's
// 16 MiB []byte) may be the goroutine that starts a garbage-collection
// cycle: the allocation crosses the heap's trigger, and the allocating
// goroutine then runs gcStart (finishing the sweep, stopping the world,
// waiting for the other Ps to stop) and, during a mark phase, pays a mark
// assist in proportion to the bytes it allocated. Every connection of the
// loop waits meanwhile. Ahead does that allocation on a goroutine of its
// own, before the array is needed, and makes its pages present there too
// (Prefault's work, run in the same goroutine when a prefault job is
// free), so that the loop only takes a ready array.

// Ahead is one array being allocated on a goroutine of its own (AllocAhead).
// Its methods may be called from any goroutine; Take from one at a time.
type Ahead struct {
	done chan struct{} // closed when b is set
	b    []byte        // written before done is closed
}

// AllocAhead starts allocating an array of capacity n (its bytes not
// zeroed: whatever the heap held, see MakeNoZero) on a goroutine of its own,
// and faulting its pages in there if it is at least PrefaultMin long and a
// prefault job is free (Prefault's bound). The caller bounds how many it
// keeps under way: each is n bytes of memory once done.
func AllocAhead(n int) *Ahead {
	a := &Ahead{done: make(chan struct{})}
	go a.alloc(n)
	return a
}

// alloc is AllocAhead's goroutine.
func (a *Ahead) alloc(n int) {
	b := MakeNoZero(n)
	if prefaultStart(b) {
		prefaultJob(b)
	}
	a.b = b
	close(a.done)
}

// Done returns a channel closed once the array is ready.
func (a *Ahead) Done() <-chan struct{} { return a.done }

// Ready reports whether the array is ready, without waiting.
func (a *Ahead) Ready() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// Take returns the array (empty, capacity n) once it is ready and gives
// it up: nil before, and after the first Take.
func (a *Ahead) Take() []byte {
	if !a.Ready() {
		return nil
	}
	b := a.b
	a.b = nil
	return b
}

// MakeNoZero returns an empty []byte with capacity c whose array is not
// zeroed: its bytes are whatever the heap held (stale data of this
// process). Only for arrays whose bytes are all written before they are
// read. strings.Builder.Grow is the standard library's way to allocate
// without zeroing (internal/bytealg.MakeNoZero); the builder is dropped
// and its array, never seen as a string by anyone, becomes the slice's.
func MakeNoZero(c int) []byte {
	var sb strings.Builder
	sb.Grow(c)
	sb.WriteByte(0) // a non-empty string, so that StringData is the array
	s := sb.String()
	return unsafe.Slice(unsafe.StringData(s), c)[:0]
}
