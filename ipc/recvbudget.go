package ipc

import "github.com/ipcframe/ipcframe/buffers"

// recvBudget is a connection's serde.ValueBudget: it lets the decoders of
// the connection's incoming messages allocate a large string or []byte
// value's whole array as soon as its declared size is known, so that each
// byte is copied once, from the read buffer into its final place, instead
// of growing in segments until half the value has arrived and then being
// copied again (serde/grow.go).
//
// Trust rule: no value is lent more than the largest value the connection
// has delivered in full (proven), and the bytes lent at one time, over all
// the values the connection is receiving, never pass recvBudgetValues (2)
// times it. A peer therefore makes its receiver hold no more memory ahead
// of its bytes than twice what it has already sent in one value, never
// more than 2×Limits.MaxString; a value that does not fit what is left
// grows in segments, as every value does on a new connection. Two values
// (not one) may be lent at once because a sender with two large messages
// under way interleaves their packets (cmd/bench -mode bulk keeps two
// outstanding): with one loan the second value grew in segments, with the
// segments' copy and fresh memory, and the pair ran at about half the rate
// of a lone value (docs/benchmarks.md, "The lone 64 MiB message, TLS and
// bench bulk, twelfth session"). A lent value that is abandoned
// (CancelMessage, the connection closing, a decode error) takes the
// connection's proof away: the next large value grows in segments again
// until one is delivered in full, so declaring and canceling values cannot
// make the receiver allocate faster than the peer sends bytes. A lent array
// of 1 MiB or more is handed to buffers.Prefault (Lent), which makes its
// missing pages resident on a goroutine of its own at once rather than as
// its bytes arrive: the rule above bounds that memory as it bounds the
// arrays.
//
// The next value's array ahead: when a value is lent its array, the budget
// has an array of the same size allocated on a goroutine of its own
// (buffers.AllocAhead, which also faults its pages in), if the rule leaves
// room for it: the ahead array counts with the loans, so lent plus its size
// stays within recvBudgetValues times the proof. So one large value at a
// time gets its array ahead (the allocation has the whole of the value
// under way to finish); two at once of the proven size leave no room, and
// their arrays are allocated on the loop as without it (an array started
// when one of them ends would rarely be ready for the next, which the
// sender starts at once). Once values have overlapped, none is started
// until a value lent alone ends alone: else each burst of values under way
// together would waste the array started for its first one, taken by the
// second before it is ready. The next value whose size
// is that size or up to an eighth less takes it (Array) instead of
// allocating on the loop, where the allocation may start a
// garbage-collection cycle whose start (the sweep left over, the stop of
// the world) and mark assists the loop would run while every connection of
// it waits (docs/benchmarks.md, "The next value's array off the loop,
// sixteenth session"). A value that does not fit it drops it; so does the
// loss of the proof. A value that finds the array still being allocated
// takes its place in the rule and allocates its own on the loop, as without
// an ahead; no new ahead starts until that orphaned one is done, so a
// connection never has more than one array being allocated ahead, and the
// memory held for it beyond the rule is at most that orphan until the next
// collection. A connection keeps its ready ahead array while idle (at most
// the proof) and drops it with the reader.
type recvBudget struct {
	// owned by the connection's loop (or the lone reader)
	proven int // the largest value delivered in full since the last abandoned loan
	lent   int // bytes lent to values under way
	// ahead is the next value's array being or done allocated off the
	// loop, aheadN its size (counted with lent by the rule); orphan is an
	// ahead a value could not wait for, still being allocated; took is set
	// by Array when it hands out ahead's array, for the Lent that follows.
	ahead  *buffers.Ahead
	aheadN int
	orphan *buffers.Ahead
	took   bool
	// overlap is set when a value was lent while another was under way,
	// and cleared when a value lent alone ends with none under way: no
	// array is started ahead meanwhile. alone says that no other value
	// was lent since the current one, lent while none was under way.
	overlap, alone bool
}

// recvBudgetValues is how many values of the proven size may be lent at
// once (see recvBudget).
const recvBudgetValues = 2

// aheadFits reports whether a value declared n bytes long takes an ahead
// array of m bytes: not larger, and at most an eighth smaller.
func aheadFits(n, m int) bool { return n <= m && m-n <= m/8 }

// Lend implements serde.ValueBudget.
func (b *recvBudget) Lend(n int) bool {
	if n > b.proven {
		return false
	}
	limit := recvBudgetValues * b.proven
	if b.ahead != nil && !aheadFits(n, b.aheadN) && b.lent+b.aheadN+n > limit {
		b.dropAhead() // a loan is worth more than an array for a value of another size
	}
	held := b.lent + n
	if b.ahead != nil && !aheadFits(n, b.aheadN) {
		held += b.aheadN
	}
	if held > limit {
		return false
	}
	b.alone = b.lent == 0
	if !b.alone {
		b.overlap = true
	}
	b.lent += n
	return true
}

// Array implements serde.ReadyArrays: the ahead array when the value fits
// it and it is ready. A fitting value that finds it still being allocated
// orphans it; one that does not fit leaves it for a later value.
func (b *recvBudget) Array(n int) []byte {
	if b.ahead == nil || !aheadFits(n, b.aheadN) {
		return nil
	}
	a := b.ahead.Take()
	if a == nil {
		b.orphan = b.ahead
	}
	b.ahead, b.aheadN = nil, 0
	if a == nil {
		return nil
	}
	b.took = true
	return a[:0:n]
}

// Lent implements serde.LentArrays: a lent array's pages are faulted in on
// another goroutine ahead of the value's bytes (buffers.Prefault), so that
// the loop's reads into it do not take the faults of memory new to the
// process (docs/benchmarks.md, "The plain 64 MiB message and its page
// faults, fourteenth session"); an ahead array had its pages faulted in
// where it was allocated. Then the next value's array is started ahead,
// if the rule leaves room.
func (b *recvBudget) Lent(a []byte) {
	if !b.took {
		buffers.Prefault(a)
	}
	b.took = false
	b.startAhead(cap(a))
}

// End implements serde.ValueBudget.
func (b *recvBudget) End(n, got int, lent bool) {
	if lent {
		b.lent -= n
		if got < n {
			b.proven = 0
			b.dropAhead()
		}
		if b.lent == 0 && b.alone {
			b.overlap = false
		}
		return
	}
	if got == n && n > b.proven {
		b.proven = n
	}
}

// startAhead starts allocating an array of n bytes for the next value, if
// none is allocated or being allocated for the connection and the rule
// leaves room for it.
func (b *recvBudget) startAhead(n int) {
	if b.ahead != nil || b.overlap || b.lent+n > recvBudgetValues*b.proven {
		return
	}
	if b.orphan != nil {
		if !b.orphan.Ready() {
			return
		}
		b.orphan = nil
	}
	b.ahead, b.aheadN = buffers.AllocAhead(n), n
}

// dropAhead gives up the ahead array: ready, it is garbage; still being
// allocated, it becomes the orphan.
func (b *recvBudget) dropAhead() {
	if b.ahead != nil && !b.ahead.Ready() {
		b.orphan = b.ahead
	}
	b.ahead, b.aheadN = nil, 0
}
