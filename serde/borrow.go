package serde

import "unsafe"

// Borrowable returns how many bytes Borrow could return at most now: the
// rest of the []byte or string field under way, or 0.
func (e *Encoder) Borrowable() int {
	o := e.borrowOp()
	if o == nil {
		return 0
	}
	return int(o.n - o.i)
}

// Borrow returns up to max of the next bytes Encode would write, when they
// are the contents of a []byte or string field under way (its length
// prefix already written), and advances the encoder past them as if Encode
// had copied them; otherwise it returns nil and changes nothing. A caller
// that sends large values (ipc's writer) hands the returned bytes to the
// kernel itself instead of copying them into its own buffer.
//
// The slice is the field's own memory, not a copy: the caller must not
// modify it (a string's bytes are immutable), and must be done with it
// before the value may change or be reused, which for ipc is before the
// message completes.
func (e *Encoder) Borrow(max int) []byte {
	o := e.borrowOp()
	if o == nil || max <= 0 {
		return nil
	}
	end := o.n
	if uint64(max) < end-o.i {
		end = o.i + uint64(max)
	}
	var b []byte
	if o.kind == opString {
		s := *(*string)(o.p)
		b = unsafe.Slice(unsafe.StringData(s), len(s))[o.i:end:end]
	} else {
		b = (*(*[]byte)(o.p))[o.i:end:end]
	}
	o.i = end
	if o.i == o.n {
		e.pop()
	}
	return b
}

// borrowOp returns the []byte or string op whose contents Encode would
// copy next, or nil.
func (e *Encoder) borrowOp() *op {
	if e.err != nil || e.spos < e.slen {
		return nil
	}
	top := len(e.v.ops) - 1
	if top < 0 {
		return nil
	}
	o := &e.v.ops[top]
	if (o.kind != opString && o.kind != opBytes) || o.phase != 1 || o.i >= o.n {
		return nil
	}
	if uint64(rawLen(o)) < o.n {
		return nil // the field shrank: Encode reports it
	}
	return o
}
