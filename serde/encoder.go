package serde

import (
	"errors"
	"fmt"
	"io"
	"math"
)

// Encoder serializes one value at a time, a buffer at a time. The zero value
// is not usable; use [NewEncoder]. An Encoder is not safe for concurrent use
// and is meant to be reused (Reset) to avoid allocations: once its op stack
// has grown to a message's depth, encoding messages made of primitives,
// strings, []byte, slices, optionals and nested structs does not allocate
// (maps allocate a key snapshot; Any, streams and continuations allocate
// only what the user's code does).
type Encoder struct {
	v   Visitor
	reg *Registry
	lim Limits
	err error

	// scratch stages an encoding that did not fit the caller's buffer; it
	// is copied out, possibly a byte at a time, before anything else.
	scratch    [16]byte
	spos, slen uint8

	// waiting is the stream source whose Read returned ErrNotReady in the
	// last Encode call (Waiting); nil otherwise.
	waiting StreamSource
}

// NewEncoder returns an encoder using reg (may be nil if no [Visitor.Any]
// fields are used) and lim (zero fields mean the defaults, see
// [Limits.WithDefaults]). Call Reset before Encode.
func NewEncoder(reg *Registry, lim Limits) *Encoder {
	e := &Encoder{reg: reg, lim: lim.WithDefaults()}
	e.v.ops = make([]op, 0, 16)
	e.err = errNotReset
	return e
}

var errNotReset = errors.New("serde: Encode or Decode before Reset")

// Reset starts encoding root, dropping any unfinished value. root is encoded
// like a nested [Visitor.Struct]: its version first if it is [Versioned],
// then its fields. A nil root makes Encode fail.
func (e *Encoder) Reset(root Type) {
	e.v.reset(false)
	e.err = nil
	e.spos, e.slen = 0, 0
	e.waiting = nil
	if root == nil {
		e.err = errNilRoot
		return
	}
	o := e.v.next()
	o.kind, o.x = opStruct, root
}

// Encode writes as much of the value as fits into buf and returns the byte
// count. done is true once the last byte has been written; it may return
// n == len(buf) and done == false, in which case the caller supplies another
// buffer. An error leaves the encoder unusable until Reset.
//
// Every call with len(buf) > 0 on an unfinished value writes at least one
// byte (encodings that do not fit are staged and copied out piecewise),
// unless it stops at a stream source that has no bytes ready
// ([ErrNotReady]): it then returns what it wrote before (possibly 0 bytes,
// done false, a nil error) and [Encoder.Waiting] reports the source.
// Fields that write no bytes (empty structs, continuations, the end of a
// container) are processed even when buf is full, so a value that fits
// exactly reports done == true. Encode with an empty buf returns (0, false,
// nil) unless only such byte-less work is left, in which case it returns (0,
// true, nil). After done, Encode returns (0, true, nil) until Reset.
func (e *Encoder) Encode(buf []byte) (n int, done bool, err error) {
	if e.err != nil {
		return 0, false, e.err
	}
	e.waiting = nil
	w := 0
	for {
		if e.spos < e.slen {
			k := copy(buf[w:], e.scratch[e.spos:e.slen])
			w += k
			e.spos += uint8(k)
			if e.spos < e.slen {
				return w, false, nil
			}
		}
		top := len(e.v.ops) - 1
		if top < 0 {
			return w, true, nil
		}
		o := &e.v.ops[top]
		switch o.kind {
		case opBool:
			if w == len(buf) {
				return w, false, nil
			}
			var b byte
			if *(*bool)(o.p) {
				b = 1
			}
			buf[w] = b
			w++
			e.pop()
		case opFixed8:
			if w == len(buf) {
				return w, false, nil
			}
			buf[w] = *(*uint8)(o.p)
			w++
			e.pop()
		case opFixed16:
			if w == len(buf) {
				return w, false, nil
			}
			x := *(*uint16)(o.p)
			if len(buf)-w >= 2 {
				putLE16(buf[w:], x)
				w += 2
			} else {
				putLE16(e.scratch[:], x)
				e.spos, e.slen = 0, 2
			}
			e.pop()
		case opInt8, opInt16, opInt32, opInt64, opInt, opUint8, opUint16,
			opUint32, opUint64, opUint, opFloat32, opFloat64:
			if w == len(buf) {
				return w, false, nil
			}
			w = e.plain(buf, w, loadInt(o))
			e.pop()
		case opCross:
			if w == len(buf) {
				return w, false, nil
			}
			w = e.cross(buf, w, *(*uint64)(o.p))
			e.pop()
		case opString, opBytes:
			if o.phase == 0 {
				if w == len(buf) {
					return w, false, nil
				}
				size := uint64(rawLen(o))
				if size > e.lim.MaxString {
					return w, false, e.fail(o.kind, fmt.Errorf("%w: size %d > MaxString %d", ErrLimit, size, e.lim.MaxString))
				}
				w = e.cross(buf, w, size)
				o.phase, o.n, o.i = 1, size, 0
				continue
			}
			if o.i < o.n {
				if w == len(buf) {
					return w, false, nil
				}
				if uint64(rawLen(o)) < o.n {
					return w, false, e.fail(o.kind, errElem)
				}
				var k int
				if o.kind == opString {
					k = copy(buf[w:], (*(*string)(o.p))[o.i:o.n])
				} else {
					k = copy(buf[w:], (*(*[]byte)(o.p))[o.i:o.n])
				}
				w += k
				o.i += uint64(k)
				if o.i < o.n {
					return w, false, nil
				}
			}
			e.pop()
		case opStruct:
			t := o.x.(Type)
			var ver uint32
			if vt, ok := t.(Versioned); ok {
				if w == len(buf) {
					return w, false, nil
				}
				ver = vt.SerdeVersion()
				w = e.cross(buf, w, uint64(ver))
			}
			e.pop()
			if err := e.v.visit(t, ver); err != nil {
				return w, false, e.fail(opStruct, err)
			}
		case opAny:
			if w == len(buf) {
				return w, false, nil
			}
			t := *(*Type)(o.p)
			if t == nil {
				w = e.cross(buf, w, 0)
				e.pop()
				continue
			}
			id, ok := e.reg.ID(t)
			if !ok {
				return w, false, e.fail(opAny, fmt.Errorf("%w: %T is not registered", ErrUnknownType, t))
			}
			w = e.cross(buf, w, id)
			o.kind, o.x = opStruct, t
		case opStreamOut:
			if w == len(buf) {
				return w, false, nil
			}
			var err error
			if w, err = e.stream(o, buf, w); err != nil {
				return w, false, e.fail(opStreamOut, err)
			}
			if e.waiting != nil {
				return w, false, nil
			}
		case opStreamIn:
			return w, false, e.fail(opStreamIn, fmt.Errorf("%w: StreamIn queued while encoding", ErrBadValue))
		case opThen:
			c, ver := o.x.(Continuation), o.ver
			e.pop()
			if err := e.v.cont(c, ver); err != nil {
				return w, false, e.fail(opThen, err)
			}
		case opSlice, opMap, opOptional:
			if o.phase == 0 {
				if w == len(buf) {
					return w, false, nil
				}
				cnt := uint64(o.drv.length(o.p))
				if o.kind == opOptional {
					buf[w] = byte(cnt)
					w++
				} else {
					if cnt > e.lim.MaxContainer {
						return w, false, e.fail(o.kind, fmt.Errorf("%w: count %d > MaxContainer %d", ErrLimit, cnt, e.lim.MaxContainer))
					}
					w = e.cross(buf, w, cnt)
				}
				o.phase, o.n, o.i = 1, cnt, 0
				continue
			}
			if o.i == o.n {
				e.pop()
				continue
			}
			i := o.i
			o.i++
			if err := e.v.element(o, i); err != nil {
				return w, false, e.fail(o.kind, err)
			}
		default:
			return w, false, e.fail(o.kind, fmt.Errorf("%w: bad op", ErrBadValue))
		}
	}
}

func (e *Encoder) pop() {
	top := len(e.v.ops) - 1
	e.v.ops[top] = op{}
	e.v.ops = e.v.ops[:top]
}

func (e *Encoder) fail(k opKind, err error) error {
	e.err = fmt.Errorf("serde: encoding %s: %w", k, err)
	return e.err
}

// plain writes x's plain form at buf[w:], staging it if it does not fit.
// The caller ensures w < len(buf).
func (e *Encoder) plain(buf []byte, w int, x uint64) int {
	if x < 0x100 && len(buf)-w >= 2 {
		if x == 0 {
			buf[w] = 0
			return w + 1
		}
		buf[w], buf[w+1] = 1, byte(x)
		return w + 2
	}
	if k := PutPlain(buf[w:], x); k > 0 {
		return w + k
	}
	e.slen, e.spos = uint8(PutPlain(e.scratch[:], x)), 0
	return e.flush(buf, w)
}

// cross writes x's checked cross form at buf[w:], staging it if needed.
func (e *Encoder) cross(buf []byte, w int, x uint64) int {
	if k := PutCross(buf[w:], x); k > 0 {
		return w + k
	}
	e.slen, e.spos = uint8(PutCross(e.scratch[:], x)), 0
	return e.flush(buf, w)
}

func (e *Encoder) flush(buf []byte, w int) int {
	k := copy(buf[w:], e.scratch[e.spos:e.slen])
	e.spos += uint8(k)
	return w + k
}

// stream writes the next chunk (or the final empty chunk) of a stream op.
// The caller ensures w < len(buf).
func (e *Encoder) stream(o *op, buf []byte, w int) (int, error) {
	src, _ := o.x.(StreamSource)
	if o.phase == 1 || src == nil {
		// Final chunk: length 0.
		if len(buf)-w >= 2 {
			putLE16(buf[w:], 0)
			w += 2
		} else {
			putLE16(e.scratch[:], 0)
			e.spos, e.slen = 0, 2
			w = e.flush(buf, w)
		}
		e.pop()
		return w, nil
	}
	// Read straight into buf after a 2-byte header, or into the scratch
	// when fewer than 3 bytes are left.
	room := len(buf) - w
	var dst []byte
	staged := room < 3
	if staged {
		dst = e.scratch[2:]
	} else {
		dst = buf[w+2 : w+2+min(room-2, math.MaxUint16)]
	}
	k, err := src.Read(dst)
	if err != nil && errors.Is(err, ErrNotReady) {
		if k == 0 {
			e.waiting = src
			return w, nil
		}
		err = nil // bytes now, the rest later
	}
	if k < 0 || k > len(dst) {
		return w, fmt.Errorf("%w: stream source returned count %d", ErrBadValue, k)
	}
	if k > 0 {
		if uint64(k) > e.lim.MaxStream-o.n {
			return w, fmt.Errorf("%w: stream longer than MaxStream %d", ErrLimit, e.lim.MaxStream)
		}
		o.n += uint64(k)
		if staged {
			putLE16(e.scratch[:], uint16(k))
			e.spos, e.slen = 0, uint8(2+k)
			w = e.flush(buf, w)
		} else {
			putLE16(buf[w:], uint16(k))
			w += 2 + k
		}
	}
	switch {
	case err == io.EOF:
		o.phase = 1
	case err != nil:
		return w, err
	case k == 0:
		return w, ErrNoProgress
	}
	return w, nil
}

// Waiting returns the stream source at which the last Encode call stopped
// because its Read returned [ErrNotReady] with no bytes, or nil. The value
// is unfinished: call Encode again once the source has bytes ready.
func (e *Encoder) Waiting() StreamSource { return e.waiting }

// rawLen is the current length of a string or []byte field.
func rawLen(o *op) int {
	if o.kind == opString {
		return len(*(*string)(o.p))
	}
	return len(*(*[]byte)(o.p))
}

// loadInt returns a plain-integer field as its unsigned bit pattern.
func loadInt(o *op) uint64 {
	p := o.p
	switch o.kind {
	case opInt8:
		return uint64(uint8(*(*int8)(p)))
	case opInt16:
		return uint64(uint16(*(*int16)(p)))
	case opInt32:
		return uint64(uint32(*(*int32)(p)))
	case opInt64:
		return uint64(*(*int64)(p))
	case opInt:
		return uint64(uint(*(*int)(p)))
	case opUint8:
		return uint64(*(*uint8)(p))
	case opUint16:
		return uint64(*(*uint16)(p))
	case opUint32:
		return uint64(*(*uint32)(p))
	case opUint64:
		return *(*uint64)(p)
	case opUint:
		return uint64(*(*uint)(p))
	case opFloat32:
		return uint64(math.Float32bits(*(*float32)(p)))
	case opFloat64:
		return math.Float64bits(*(*float64)(p))
	}
	return 0
}

// storeInt stores x into a plain-integer field. x fits the field's width.
func storeInt(o *op, x uint64) {
	p := o.p
	switch o.kind {
	case opInt8:
		*(*int8)(p) = int8(x)
	case opInt16:
		*(*int16)(p) = int16(x)
	case opInt32:
		*(*int32)(p) = int32(x)
	case opInt64:
		*(*int64)(p) = int64(x)
	case opInt:
		*(*int)(p) = int(x)
	case opUint8:
		*(*uint8)(p) = uint8(x)
	case opUint16:
		*(*uint16)(p) = uint16(x)
	case opUint32:
		*(*uint32)(p) = uint32(x)
	case opUint64:
		*(*uint64)(p) = x
	case opUint:
		*(*uint)(p) = uint(x)
	case opFloat32:
		*(*float32)(p) = math.Float32frombits(uint32(x))
	case opFloat64:
		*(*float64)(p) = math.Float64frombits(x)
	}
}
