package serde

import (
	"fmt"
	"unsafe"
)

// errBadFill: Filled was given more bytes than the value has room for.
var errBadFill = fmt.Errorf("%w: Filled beyond the value's space", ErrBadValue)

// ValueSpace returns the room left in the array of the string or []byte
// value the decoder is in the middle of, when that array already holds the
// whole value: a large value whose array a [ValueBudget] lent, or a []byte
// whose capacity held its declared size (a recycled message). The slice is
// exactly as long as the value's bytes still to come; its contents are
// stale until written. Nil otherwise: no value under way, a value still
// growing in segments (its declared size not yet proven), a short string
// collected in the decoder's own buffer, or a decoder that failed.
//
// A caller that reads the value's next bytes from elsewhere (ipc reads them
// from the socket straight into the value) writes them to the front of the
// slice and reports them with Filled, in place of Decode: the bytes are then
// never copied again. No memory is allocated ahead of what the decoder
// would hold anyway.
func (d *Decoder) ValueSpace() []byte {
	top := len(d.v.ops) - 1
	if d.err != nil || top < 0 || d.segCur || len(d.segs) > 0 {
		return nil
	}
	o := &d.v.ops[top]
	if o.phase != 1 || o.i >= o.n {
		return nil
	}
	left := o.n - o.i
	var b []byte
	switch o.kind {
	case opBytes:
		b = *(*[]byte)(o.p)
	case opString:
		if o.n <= maxKeptStr {
			return nil // collected in d.str and copied into the string
		}
		b = d.str
	default:
		return nil
	}
	if uint64(len(b)) != o.i || uint64(cap(b)-len(b)) < left {
		return nil
	}
	return b[len(b) : len(b)+int(left)]
}

// Filled tells the decoder that the first n bytes of the slice ValueSpace
// returned have been written: they become the value's next bytes as if
// Decode had copied them. When they complete the value, decoding goes on
// with no further input, as Decode(nil) would: done reports that the whole
// root value is complete. n must be at most the length ValueSpace returned
// (and ValueSpace must have been called since the last Decode, Filled or
// Reset); a larger n, or a call with no value space, is an error
// (ErrBadValue) and leaves the decoder unusable until Reset.
func (d *Decoder) Filled(n int) (done bool, err error) {
	space := d.ValueSpace()
	if n < 0 || n > len(space) || (n > 0 && space == nil) {
		if d.err != nil {
			return false, d.err
		}
		return false, d.fail(opBytes, errBadFill)
	}
	if n == 0 {
		return false, nil
	}
	o := &d.v.ops[len(d.v.ops)-1]
	o.i += uint64(n)
	if o.kind == opBytes {
		b := (*[]byte)(o.p)
		*b = (*b)[:len(*b)+n]
	} else {
		d.str = d.str[:len(d.str)+n]
		if o.i == o.n {
			*(*string)(o.p) = unsafe.String(unsafe.SliceData(d.str), len(d.str))
			d.str = nil
		}
	}
	if o.i < o.n {
		return false, nil
	}
	_, done, err = d.Decode(nil) // the value's end, and what needs no bytes after it
	return done, err
}
