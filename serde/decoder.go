package serde

import (
	"fmt"
	"io"
	"math"
	"unsafe"
)

// Decoder rebuilds one value at a time from byte slices of any size. The
// zero value is not usable; use [NewDecoder]. A Decoder is not safe for
// concurrent use and is meant to be reused (Reset). Once its op stack has
// grown, decoding into a reused value made of primitives, []byte, slices,
// optionals and nested structs does not allocate as long as the value's
// slices already have the capacity; strings, maps, new optionals and Any
// values allocate what they hold.
//
// The decoder never trusts a declared size beyond Limits, and, unless its
// ValueBudget lends (below), never allocates far ahead of the bytes it has
// received: a string or []byte
// starts with a capacity of at most 32 KiB and then doubles as its bytes
// arrive, never beyond twice the bytes received (plus 32 KiB) nor beyond
// its declared size. Until half the declared size has arrived the bytes go
// to a list of segments; then one array of the declared size takes them
// (one copy of at most half the value) and the rest arrives straight in
// it. So a value of n bytes costs at most n/2 bytes of copying beyond
// the input's own (no quadratic or 1.25x-step regrowth), no array is
// zeroed before it is written, and a large string becomes the string
// without a final copy. A [SegmentPool] (SetSegmentPool) lets the segments
// of one value serve the next instead of being allocated again. A
// [ValueBudget] (SetValueBudget) may lend a large value's whole array as
// soon as its declared size is known: the value is then decoded into it
// directly, with no segments and no second copy. A slice starts with room
// for at most 4 KiB of elements and grows by append as they are decoded,
// and a map starts with at most 64 entries.
type Decoder struct {
	v   Visitor
	reg *Registry
	lim Limits
	err error

	// scratch collects an integer, bool-free fixed field or chunk header
	// that arrived split across calls: sn bytes of sneed.
	scratch   [MaxCrossLen]byte
	sn, sneed uint8
	// str accumulates a string that arrived split across calls.
	str []byte
	// segs holds the full arrays of a large string or []byte value that
	// has not yet proven half its declared size, segLen bytes in all
	// (grow.go, appendBounded). Empty between values. segFirst: segs[0]
	// is the value's first array (the caller's or the 32 KiB start), not
	// a segment; segCur: the array the value is growing in is a segment.
	// segPool lends and takes back the segments (SetSegmentPool; nil:
	// allocate them); it survives Reset.
	segs     [][]byte
	segLen   int
	segFirst bool
	segCur   bool
	segPool  SegmentPool
	// budget decides whether a large value's array is allocated whole at
	// once (SetValueBudget; nil: never); it survives Reset. big: the
	// string or []byte value on top of the op stack is large and its end
	// is due to the budget (budget.go); lent: the budget lent its array.
	budget ValueBudget
	big    bool
	lent   bool
	// free counts the container elements of the current value that started
	// with no byte consumed since the previous element started (elements
	// of zero size: empty structs, nested empty containers' ends). It is
	// bounded by MaxContainer per value, so that nested containers of
	// zero-size elements cannot make a few bytes drive MaxContainer^2
	// iterations. lastR is the read offset at the last element start in
	// this Decode call (-1 at the start of a call: new bytes arrived).
	free  uint64
	lastR int
	// onStream is SetStreamHook's function; it survives Reset.
	onStream func(StreamSink)
}

// SetStreamHook makes the decoder call f with the sink of each stream field
// (StreamIn) whose first non-empty chunk has arrived, before the sink's
// first Write. ipc uses it to find asynchronous sinks. f runs on the
// decoding goroutine; nil removes the hook. The hook survives Reset.
func (d *Decoder) SetStreamHook(f func(StreamSink)) { d.onStream = f }

// maxKeptStr is the largest string accumulation buffer kept between values.
const maxKeptStr = 64 << 10

// maxBytesPrealloc bounds the capacity a []byte field is given up front.
const maxBytesPrealloc = 32 << 10

// NewDecoder returns a decoder using reg (may be nil if no [Visitor.Any]
// fields are used) and lim (zero fields mean the defaults). Call Reset before
// Decode.
func NewDecoder(reg *Registry, lim Limits) *Decoder {
	d := &Decoder{reg: reg, lim: lim.WithDefaults()}
	d.v.ops = make([]op, 0, 16)
	d.err = errNotReset
	return d
}

// Reset starts decoding into root, dropping any unfinished value. root is
// decoded like a nested [Visitor.Struct]: its version first if it is
// [Versioned], then its fields. Fields are assigned as they are decoded, so a
// value whose decoding failed or was abandoned may be partly overwritten.
func (d *Decoder) Reset(root Type) {
	d.err = nil
	d.sn, d.sneed = 0, 0
	if top := len(d.v.ops) - 1; d.segCur && top >= 0 && d.v.ops[top].kind == opString {
		// An abandoned large string was growing in a segment.
		d.putSegment(d.str)
		d.str = nil
	}
	if top := len(d.v.ops) - 1; d.big && top >= 0 {
		// An abandoned large value: the budget hears how much of it came.
		d.big = false
		d.endLarge(d.v.ops[top].n, d.v.ops[top].i)
	}
	d.dropSegments()
	if cap(d.str) > maxKeptStr {
		d.str = nil // an abandoned large string's own array
	} else {
		d.str = d.str[:0]
	}
	d.v.reset(true)
	d.free = 0
	if root == nil {
		d.err = errNilRoot
		return
	}
	o := d.v.next()
	o.kind, o.x = opStruct, root
}

// Decode consumes bytes from data and returns how many it used. done is true
// when the value is complete; then n may be less than len(data) and the rest
// belongs to whatever follows. When done is false all of data was consumed.
//
// When the value ends exactly at the end of data, Decode returns
// (len(data), true, nil): fields that need no bytes (empty structs,
// continuations, the end of a container) are processed without waiting for
// more data. Decode with empty data returns (0, false, nil) unless only such
// work is left. After done, Decode returns (0, true, nil) until Reset.
// Errors wrap one of the package's sentinels (or the stream sink's error)
// and name the field kind; an error leaves the decoder unusable until Reset.
func (d *Decoder) Decode(data []byte) (n int, done bool, err error) {
	if d.err != nil {
		return 0, false, d.err
	}
	r := 0
	d.lastR = -1
	for {
		top := len(d.v.ops) - 1
		if top < 0 {
			return r, true, nil
		}
		o := &d.v.ops[top]
		switch o.kind {
		case opBool:
			if r == len(data) {
				return r, false, nil
			}
			b := data[r]
			if b > 1 {
				return r, false, d.fail(opBool, fmt.Errorf("%w: byte %#x", ErrBadValue, b))
			}
			*(*bool)(o.p) = b == 1
			r++
			d.pop()
		case opFixed8:
			if r == len(data) {
				return r, false, nil
			}
			*(*uint8)(o.p) = data[r]
			r++
			d.pop()
		case opFixed16:
			if r == len(data) {
				return r, false, nil
			}
			x, ok := d.raw2(data, &r)
			if !ok {
				return r, false, nil
			}
			*(*uint16)(o.p) = x
			d.pop()
		case opInt8, opInt16, opInt32, opInt64, opInt, opUint8, opUint16,
			opUint32, opUint64, opUint, opFloat32, opFloat64:
			if r == len(data) {
				return r, false, nil
			}
			x, ok, err := d.int(data, &r, int(intWidth[o.kind]))
			if err != nil {
				return r, false, d.fail(o.kind, err)
			}
			if !ok {
				return r, false, nil
			}
			storeInt(o, x)
			d.pop()
		case opCross:
			if r == len(data) {
				return r, false, nil
			}
			x, ok, err := d.int(data, &r, 0)
			if err != nil {
				return r, false, d.fail(o.kind, err)
			}
			if !ok {
				return r, false, nil
			}
			*(*uint64)(o.p) = x
			d.pop()
		case opString, opBytes:
			if o.phase == 0 {
				if r == len(data) {
					return r, false, nil
				}
				size, ok, err := d.int(data, &r, 0)
				if err != nil {
					return r, false, d.fail(o.kind, err)
				}
				if !ok {
					return r, false, nil
				}
				if size > d.lim.MaxString {
					return r, false, d.fail(o.kind, fmt.Errorf("%w: size %d > MaxString %d", ErrLimit, size, d.lim.MaxString))
				}
				o.phase, o.n, o.i = 1, size, 0
				d.big = size > maxBytesPrealloc && d.budget != nil
				if o.kind == opString {
					d.str = d.str[:0]
					if size > maxKeptStr {
						// appendBounded allocates the string's own buffer,
						// unless the budget lends it whole now.
						d.str = d.startLarge(size)
					}
					if size == 0 {
						*(*string)(o.p) = ""
					}
				} else {
					b := (*[]byte)(o.p)
					if uint64(cap(*b)) >= size {
						*b = (*b)[:0]
					} else if l := d.startLarge(size); l != nil {
						*b = l
					} else if want := min(size, maxBytesPrealloc); uint64(cap(*b)) < want {
						*b = make([]byte, 0, want)
					} else {
						*b = (*b)[:0]
					}
				}
			}
			if o.i < o.n {
				if r == len(data) {
					return r, false, nil
				}
				k := int(min(uint64(len(data)-r), o.n-o.i))
				chunk := data[r : r+k]
				r += k
				switch {
				case o.kind == opBytes:
					b := (*[]byte)(o.p)
					*b = d.appendBounded(*b, chunk, o.n)
				case o.i == 0 && uint64(k) == o.n && !d.lent:
					*(*string)(o.p) = string(chunk)
				case o.n > maxKeptStr:
					// A large string grows in its own buffer, which then
					// becomes the string without a copy.
					d.str = d.appendBounded(d.str, chunk, o.n)
					if o.i+uint64(k) == o.n {
						*(*string)(o.p) = unsafe.String(unsafe.SliceData(d.str), len(d.str))
						d.str = nil
					}
				default:
					d.str = append(d.str, chunk...)
					if o.i+uint64(k) == o.n {
						*(*string)(o.p) = string(d.str)
						d.str = d.str[:0]
					}
				}
				o.i += uint64(k)
				if o.i < o.n {
					return r, false, nil
				}
			}
			if d.big {
				d.big = false
				d.endLarge(o.n, o.n)
			}
			d.pop()
		case opStruct:
			t := o.x.(Type)
			var ver uint32
			if _, ok := t.(Versioned); ok {
				if r == len(data) {
					return r, false, nil
				}
				x, ok, err := d.int(data, &r, 0)
				if err != nil {
					return r, false, d.fail(opStruct, fmt.Errorf("version: %w", err))
				}
				if !ok {
					return r, false, nil
				}
				if x > math.MaxUint32 {
					return r, false, d.fail(opStruct, fmt.Errorf("%w: version %d does not fit uint32", ErrBadValue, x))
				}
				ver = uint32(x)
			}
			d.pop()
			if err := d.v.visit(t, ver); err != nil {
				return r, false, d.fail(opStruct, err)
			}
		case opAny:
			if r == len(data) {
				return r, false, nil
			}
			id, ok, err := d.int(data, &r, 0)
			if err != nil {
				return r, false, d.fail(opAny, err)
			}
			if !ok {
				return r, false, nil
			}
			p := (*Type)(o.p)
			if id == 0 {
				*p = nil
				d.pop()
				continue
			}
			t, ok := d.reg.New(id)
			if !ok {
				return r, false, d.fail(opAny, fmt.Errorf("%w: id %d", ErrUnknownType, id))
			}
			*p = t
			o.kind, o.x = opStruct, t
		case opStreamIn:
			var err error
			var ok bool
			if r, ok, err = d.stream(o, data, r); err != nil {
				return r, false, d.fail(opStreamIn, err)
			}
			if !ok {
				return r, false, nil
			}
		case opStreamOut:
			return r, false, d.fail(opStreamOut, fmt.Errorf("%w: StreamOut queued while decoding", ErrBadValue))
		case opThen:
			c, ver := o.x.(Continuation), o.ver
			d.pop()
			if err := d.v.cont(c, ver); err != nil {
				return r, false, d.fail(opThen, err)
			}
		case opSlice, opMap, opOptional:
			if o.phase == 0 {
				if r == len(data) {
					return r, false, nil
				}
				var cnt uint64
				if o.kind == opOptional {
					b := data[r]
					if b > 1 {
						return r, false, d.fail(opOptional, fmt.Errorf("%w: presence byte %#x", ErrBadValue, b))
					}
					r++
					cnt = uint64(b)
				} else {
					x, ok, err := d.int(data, &r, 0)
					if err != nil {
						return r, false, d.fail(o.kind, err)
					}
					if !ok {
						return r, false, nil
					}
					if x > d.lim.MaxContainer {
						return r, false, d.fail(o.kind, fmt.Errorf("%w: count %d > MaxContainer %d", ErrLimit, x, d.lim.MaxContainer))
					}
					cnt = x
				}
				o.drv.prepare(o.p, cnt)
				o.phase, o.n, o.i = 1, cnt, 0
				continue
			}
			// The container is back on top: element i-1 is complete.
			if o.i > 0 {
				o.drv.commit(o.p)
			}
			if o.i == o.n {
				d.pop()
				continue
			}
			if r == d.lastR {
				if d.free++; d.free > d.lim.MaxContainer {
					return r, false, d.fail(o.kind, fmt.Errorf("%w: more than MaxContainer %d zero-size elements in one value", ErrLimit, d.lim.MaxContainer))
				}
			}
			d.lastR = r
			i := o.i
			o.i++
			if err := d.v.element(o, i); err != nil {
				return r, false, d.fail(o.kind, err)
			}
		default:
			return r, false, d.fail(o.kind, fmt.Errorf("%w: bad op", ErrBadValue))
		}
	}
}

func (d *Decoder) pop() {
	top := len(d.v.ops) - 1
	d.v.ops[top] = op{}
	d.v.ops = d.v.ops[:top]
}

func (d *Decoder) fail(k opKind, err error) error {
	d.err = fmt.Errorf("serde: decoding %s: %w", k, err)
	return d.err
}

// int reads a plain integer of at most width value bytes, or a checked cross
// integer when width is 0, that may arrive split across calls. The caller
// ensures *r < len(data). ok is false when more bytes are needed; all of
// data[*r:] has then been consumed.
func (d *Decoder) int(data []byte, r *int, width int) (x uint64, ok bool, err error) {
	b := data[*r:]
	if d.sneed == 0 {
		var n int
		if width == 0 {
			x, n, err = ParseCross(b)
		} else {
			x, n, err = ParsePlain(b, width)
		}
		if err != nil {
			return 0, false, err
		}
		if n > 0 {
			*r += n
			return x, true, nil
		}
		// Split: the first byte is valid (checked above), keep what we have.
		need := 1 + int(b[0])
		if width == 0 {
			need = 1 + int(b[0]>>3)
		}
		d.sneed = uint8(need)
		d.sn = uint8(copy(d.scratch[:], b))
		*r += len(b)
		return 0, false, nil
	}
	k := copy(d.scratch[d.sn:d.sneed], b)
	d.sn += uint8(k)
	*r += k
	if d.sn < d.sneed {
		return 0, false, nil
	}
	s := d.scratch[:d.sneed]
	d.sn, d.sneed = 0, 0
	for i := len(s) - 1; i >= 1; i-- {
		x = x<<8 | uint64(s[i])
	}
	return x, true, nil
}

// raw2 reads a raw 2-byte little-endian value that may arrive split. The
// caller ensures *r < len(data).
func (d *Decoder) raw2(data []byte, r *int) (uint16, bool) {
	if d.sneed == 0 && len(data)-*r >= 2 {
		x := le16(data[*r:])
		*r += 2
		return x, true
	}
	if d.sneed == 0 {
		d.sneed = 2
	}
	k := copy(d.scratch[d.sn:d.sneed], data[*r:])
	d.sn += uint8(k)
	*r += k
	if d.sn < d.sneed {
		return 0, false
	}
	d.sn, d.sneed = 0, 0
	return le16(d.scratch[:]), true
}

// stream advances a StreamIn op: o.phase 0 expects a chunk header, phase 1
// passes o.i more chunk bytes to the sink; o.n is the stream total so far.
// ok is false when data is used up.
func (d *Decoder) stream(o *op, data []byte, r int) (int, bool, error) {
	dst, _ := o.x.(StreamSink)
	for {
		if r == len(data) {
			return r, false, nil
		}
		if o.phase == 0 {
			size, ok := d.raw2(data, &r)
			if !ok {
				return r, false, nil
			}
			if size == 0 {
				d.pop()
				if dst != nil {
					if err := dst.Close(); err != nil {
						return r, false, err
					}
				}
				return r, true, nil
			}
			if uint64(size) > d.lim.MaxStream-o.n {
				return r, false, fmt.Errorf("%w: stream longer than MaxStream %d", ErrLimit, d.lim.MaxStream)
			}
			if o.n == 0 && d.onStream != nil && dst != nil {
				d.onStream(dst)
			}
			o.n += uint64(size)
			o.phase, o.i = 1, uint64(size)
			continue
		}
		k := int(min(uint64(len(data)-r), o.i))
		if dst != nil {
			m, err := dst.Write(data[r : r+k])
			if err != nil {
				return r, false, err
			}
			if m != k {
				return r, false, io.ErrShortWrite
			}
		}
		r += k
		o.i -= uint64(k)
		if o.i == 0 {
			o.phase = 0
		}
	}
}
