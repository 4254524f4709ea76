package reactor

import "runtime"

// Yielding the P.
//
// A loop that moves a large transfer never blocks, so a goroutine it has
// just woken (an application waiting for a small response that arrived
// beside the transfer, say) would wait for a P until Go preempts the loop
// after 10 ms. Yielding the P (runtime.Gosched) after each large read or
// write lets that goroutine run at once, and costs well under a microsecond
// when nobody waits.
//
// But Gosched puts the loop at the tail of the global run queue, behind
// every goroutine that is runnable. Beside one large transfer that is a
// handful; with a thousand callers in flight it is the hundreds the loop
// has just woken with their responses, and the loop comes back only after
// all of them have run (milliseconds) while its peer fills the pipe and
// waits (docs/benchmarks.md, "Loop scheduling"). And with no large
// transfer the loop needs no yield: it runs out of input soon and gives up
// its P anyway (gnet yields before it blocks in epoll_wait). So a loop
// yields after large transfers only on connections whose owner has said
// that small messages travel beside a large one (SetInterleaved).

// yieldBytes is the size of a read or write after which the loop yields its
// P on an interleaved connection.
const yieldBytes = 32 << 10

// SetInterleaved tells the reactor whether small messages currently travel
// beside a large one on c (loop-only). While on, the loop yields its P after
// each read or write of 32 KiB or more on c, so that goroutines woken by
// the small messages run without waiting for the transfer. Off (the
// default), the loop keeps its P until it runs out of work.
func (c *Conn) SetInterleaved(on bool) { c.interleaved = on }

// SetBulk tells the reactor whether a large message is under way on c, in
// either direction (loop-only). While on, the bytes c reads and writes
// count toward its loop's next busy poll being a bulk spin, which gives
// way when the CPU is contended (spin.go); small messages, however many
// arrive in one read, never make one. Off by default.
func (c *Conn) SetBulk(on bool) { c.bulk = on }

// yieldAfter notes a transfer of n bytes for the loop's next spin if c is
// bulk, and whether c is interleaved (spin.go), and yields the P after one
// of at least yieldBytes on an interleaved connection (loop-only).
func (c *Conn) yieldAfter(n int) {
	if c.bulk {
		c.loop.moved += n
		c.loop.besideMoved = c.loop.besideMoved || c.interleaved
	}
	if c.interleaved && n >= yieldBytes {
		c.r.stats.yields.Add(1)
		runtime.Gosched()
	}
}

// readAfter is yieldAfter for n bytes read and presented to OnData
// (trafficOnLoop): a bulk connection that is not interleaved also becomes
// the one whose input the loop's next spin gathers (spin.go).
func (c *Conn) readAfter(n int) {
	c.yieldAfter(n)
	if c.bulk && !c.interleaved && c.tls == nil {
		c.loop.gather = c
	}
}
