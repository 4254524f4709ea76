package ipc

import "time"

// segCache is a loop's serde.SegmentPool: it keeps the segment arrays of
// the large string and []byte values its connections decode, so that the
// next large value takes them instead of new memory. A value of n bytes
// grows in segments (32 KiB, doubling, about n/2 in all) until half of it
// has arrived, then moves into one array of n bytes (serde/grow.go); only
// that final array (or an array that held the whole value from the start)
// reaches the message, so a cached segment is never seen by a user. Every
// decoder the loop's codecPool makes uses its cache, and gives the
// segments back when its value completes, is abandoned (a CancelMessage, a
// decode error) or its connection closes mid-value (reader.releaseSlots).
//
// Bound: segCacheMax bytes, at most half of Limits.MaxString (a value's
// segments are at most about half its size, so this is what one value of
// the largest size the loop may decode needs). A segment that would pass
// the bound is left to the garbage collector.
//
// Release: the cache empties itself once a whole segCacheIdle passed with
// no segment taken or given back (loopState.segIdleOnLoop): a service that
// stops receiving large values lets go of them within 2×segCacheIdle.
// A lone reader (the tests) has no timer; its cache is released by
// releaseIfIdle directly.
type segCache struct {
	// immutable after init
	max int // bytes it may hold

	// owned by the loop (or the lone reader)
	free   [][]byte // full arrays, len 0, any size
	held   int      // bytes of free
	used   bool     // a segment was taken or given back since the last releaseIfIdle
	onHold func()   // called when it starts holding (arms the idle check); may be nil
}

// segCacheMax bounds a loop's segment cache in bytes; segCacheIdle is how
// long it must go unused before the loop empties it.
const (
	segCacheMax  = 32 << 20
	segCacheIdle = time.Second
)

// init sets the bound for values of at most maxString bytes.
func (c *segCache) init(maxString uint64) {
	c.max = int(min(maxString/2, segCacheMax))
}

// TakeSegment implements serde.SegmentPool: a cached array of exactly size
// bytes, or nil.
func (c *segCache) TakeSegment(size int) []byte {
	c.used = true
	for i := len(c.free) - 1; i >= 0; i-- {
		if s := c.free[i]; cap(s) == size {
			last := len(c.free) - 1
			c.free[i] = c.free[last]
			c.free[last] = nil
			c.free = c.free[:last]
			c.held -= size
			return s
		}
	}
	return nil
}

// PutSegment implements serde.SegmentPool: b is kept if it fits the bound.
func (c *segCache) PutSegment(b []byte) {
	c.used = true
	if c.held+cap(b) > c.max {
		return
	}
	c.free = append(c.free, b[:0])
	c.held += cap(b)
	if c.held == cap(b) && c.onHold != nil {
		c.onHold()
	}
}

// releaseIfIdle empties the cache if nothing was taken or given back since
// the previous call, and reports whether it still holds segments.
func (c *segCache) releaseIfIdle() (holding bool) {
	if c.used {
		c.used = false
		return c.held > 0
	}
	clear(c.free)
	c.free, c.held = nil, 0
	return false
}
