package serde

import (
	"fmt"
	"math"
	"unsafe"
)

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

// LendStream writes the header of the next piece of a stream field under
// way into buf and returns the piece's bytes as lent by its source, a
// [StreamLender], instead of read into buf: the piece is buf[:2] followed
// by b, as if Encode had written 2+len(b) bytes, and l is the source to
// Release once b has been sent. It returns (0, nil, nil) and changes
// nothing unless a stream field whose source lends is next, the source has
// bytes ready, and buf has room for the header and one byte. b is at most
// len(buf)-2 bytes (and 65535, a piece's largest) and never takes the
// stream beyond [Limits].MaxStream. A source that lends more than it was
// asked for fails the encoder: the next Encode returns [ErrBadValue].
func (e *Encoder) LendStream(buf []byte) (n int, b []byte, l StreamLender) {
	if e.err != nil || e.spos < e.slen || len(buf) < 3 {
		return 0, nil, nil
	}
	top := len(e.v.ops) - 1
	if top < 0 {
		return 0, nil, nil
	}
	o := &e.v.ops[top]
	if o.kind != opStreamOut || o.phase != 0 {
		return 0, nil, nil
	}
	l, ok := o.x.(StreamLender)
	if !ok {
		return 0, nil, nil
	}
	most := uint64(min(len(buf)-2, math.MaxUint16))
	if left := e.lim.MaxStream - o.n; left < most {
		most = left // beyond it Read reads the byte that fails the limit
	}
	if most == 0 {
		return 0, nil, nil
	}
	b = l.Lend(int(most))
	if uint64(len(b)) > most {
		_ = e.fail(opStreamOut, fmt.Errorf("%w: stream source lent %d bytes, asked for at most %d", ErrBadValue, len(b), most))
		return 0, nil, nil
	}
	if len(b) == 0 {
		return 0, nil, nil
	}
	o.n += uint64(len(b))
	putLE16(buf, uint16(len(b)))
	return 2, b, l
}
