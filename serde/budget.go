package serde

// ValueBudget lets a [Decoder] allocate the whole array of a large string or
// []byte value as soon as its declared size is known, instead of growing it
// in segments until half of it has arrived (see [Decoder]): the value's
// bytes are then copied once, from the input into their final place, and
// nothing is copied again. The budget decides how far it trusts declared
// sizes; without one (the default) a decoder trusts none.
//
// ipc gives each connection a budget that lends no value more than the
// largest value the connection has delivered in full, and at most twice
// that over all the values the connection is receiving (two large messages
// under way arrive interleaved): a peer can make its receiver hold no more
// memory ahead of its bytes than twice what it has already sent in one
// value.
//
// A value is large when its declared size is more than 32 KiB (a []byte
// whose capacity already holds it, as in a recycled message, asks for
// nothing). Its methods are called on the decoding goroutine.
type ValueBudget interface {
	// Lend reports whether the decoder may allocate an array of n bytes
	// for a value declared n bytes long before its bytes arrive. true
	// lends n bytes until the matching End.
	Lend(n int) bool
	// End reports that a large value declared n bytes long is over: got
	// bytes of it arrived (got == n: it was delivered in full; less: it
	// was abandoned by Reset). lent says whether Lend(n) had returned true
	// for it. End is called once for every large value whose declared size
	// was decoded, lent or not.
	End(n, got int, lent bool)
}

// LentArrays is a [ValueBudget] that also wants the arrays it lends: the
// decoder calls Lent with each one (empty, capacity n) right after Lend(n)
// returned true and the array was allocated, before any byte of the value
// is written into it. Lent runs on the decoding goroutine and must not
// block; it must not write to the array (the value's bytes go there). ipc
// uses it to fault the array's pages in on another goroutine ahead of the
// bytes (buffers.Prefault).
type LentArrays interface {
	ValueBudget
	Lent(b []byte)
}

// SetValueBudget makes the decoder ask b before growing a large string or
// []byte value in segments; nil (the default) makes it grow every large
// value as its bytes arrive. The budget survives Reset.
func (d *Decoder) SetValueBudget(b ValueBudget) { d.budget = b }

// startLarge is called when a string or []byte value declared n bytes long
// starts and needs an array (for a []byte: more than its capacity): it
// returns an empty array of capacity n when the value is large (d.big) and
// the budget lends n bytes, else nil.
func (d *Decoder) startLarge(n uint64) []byte {
	if !d.big || n > uint64(maxInt) || !d.budget.Lend(int(n)) {
		return nil
	}
	d.lent = true
	b := makeNoZero(int(n))
	if w, ok := d.budget.(LentArrays); ok {
		w.Lent(b)
	}
	return b
}

// endLarge reports the end of a large value (declared n, got bytes
// arrived) to the budget.
func (d *Decoder) endLarge(n, got uint64) {
	if d.budget != nil {
		d.budget.End(int(n), int(got), d.lent)
	}
	d.lent = false
}

// maxInt is the largest int.
const maxInt = int(^uint(0) >> 1)
