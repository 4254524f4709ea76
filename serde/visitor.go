package serde

import (
	"errors"
	"math/bits"
	"unsafe"
)

// opKind names what an op encodes.
type opKind uint8

const (
	opBool opKind = iota
	opInt8
	opInt16
	opInt32
	opInt64
	opInt
	opUint8
	opUint16
	opUint32
	opUint64
	opUint
	opFloat32
	opFloat64
	opFixed8
	opFixed16
	opCross
	opString
	opBytes
	opStruct
	opAny
	opStreamOut
	opStreamIn
	opThen
	opSlice
	opMap
	opOptional
)

var kindNames = [...]string{
	opBool:      "bool",
	opInt8:      "int8",
	opInt16:     "int16",
	opInt32:     "int32",
	opInt64:     "int64",
	opInt:       "int",
	opUint8:     "uint8",
	opUint16:    "uint16",
	opUint32:    "uint32",
	opUint64:    "uint64",
	opUint:      "uint",
	opFloat32:   "float32",
	opFloat64:   "float64",
	opFixed8:    "fixed8",
	opFixed16:   "fixed16",
	opCross:     "cross integer",
	opString:    "string",
	opBytes:     "bytes",
	opStruct:    "struct",
	opAny:       "polymorphic field",
	opStreamOut: "stream",
	opStreamIn:  "stream",
	opThen:      "continuation",
	opSlice:     "slice",
	opMap:       "map",
	opOptional:  "optional",
}

func (k opKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// intWidth is the number of value bytes of each plain-integer kind.
var intWidth = [...]uint8{
	opInt8:    1,
	opInt16:   2,
	opInt32:   4,
	opInt64:   8,
	opInt:     bits.UintSize / 8,
	opUint8:   1,
	opUint16:  2,
	opUint32:  4,
	opUint64:  8,
	opUint:    bits.UintSize / 8,
	opFloat32: 4,
	opFloat64: 8,
}

// op is one queued field. Only the op on top of the stack is ever partly
// done; its byte-level progress lives in the Encoder or Decoder.
type op struct {
	kind  opKind
	phase uint8  // sub-step of multi-part ops (size then body, header then elements)
	ver   uint32 // version of the struct that queued the op, for Visitor.Version in callbacks
	p     unsafe.Pointer
	// x holds, by kind: the Type (opStruct), the Continuation (opThen), the
	// StreamSource or StreamSink, the element callback (opSlice, opOptional).
	x   any
	drv driver // opSlice, opMap, opOptional
	n   uint64 // size, count or stream total
	i   uint64 // progress within n
}

// driver does the type-specific work of a generic container op, so that the
// engine needs no reflection. p points to the container field and x is the
// op's element callback.
type driver interface {
	// length returns the element count to encode (0 or 1 for an optional);
	// a map snapshots its keys.
	length(p unsafe.Pointer) int
	// prepare readies *p to receive n decoded elements.
	prepare(p unsafe.Pointer, n uint64)
	// elem queues element i's fields (appending a zero element when decoding).
	elem(v *Visitor, p unsafe.Pointer, x any, i uint64) bool
	// commit stores the element decoded last (maps insert it).
	commit(p unsafe.Pointer)
}

// Visitor is handed to [Type.Serde]; its methods queue one field each. The
// queued fields are encoded or decoded in call order after Serde returns, so
// Serde must not read fields of the value being decoded (see [Visitor.Then]).
// A Visitor is only valid during the call it is passed to.
type Visitor struct {
	decoding bool
	version  uint32
	ops      []op // the op stack, top last
	err      error
}

var (
	errNilStruct = errors.New("serde: Visitor.Struct with a nil value")
	errNilRoot   = errors.New("serde: Reset with a nil root")
	errElem      = errors.New("serde: nil element callback, or value changed while being encoded")
)

// next pushes an op with only its version set and returns it for the caller
// to fill. Slots between len and cap of the stack are always zero (pop and
// reset clear them), so this copies nothing.
func (v *Visitor) next() *op {
	n := len(v.ops)
	if n < cap(v.ops) {
		v.ops = v.ops[:n+1]
	} else {
		v.ops = append(v.ops, op{})
	}
	o := &v.ops[n]
	o.ver = v.version
	return o
}

// flip reverses the ops pushed since base so that the first field queued is
// on top of the stack.
func (v *Visitor) flip(base int) {
	s := v.ops[base:]
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}

// visit runs t.Serde with version ver and orders the queued ops.
func (v *Visitor) visit(t Type, ver uint32) error {
	base := len(v.ops)
	v.version = ver
	t.Serde(v)
	v.flip(base)
	return v.takeErr()
}

// cont runs a continuation queued by a struct of version ver.
func (v *Visitor) cont(c Continuation, ver uint32) error {
	base := len(v.ops)
	v.version = ver
	c.Continue(v)
	v.flip(base)
	return v.takeErr()
}

// element queues element i of a container op.
func (v *Visitor) element(o *op, i uint64) error {
	drv, p, x := o.drv, o.p, o.x
	base := len(v.ops)
	v.version = o.ver
	if !drv.elem(v, p, x, i) && v.err == nil {
		v.err = errElem
	}
	v.flip(base)
	return v.takeErr()
}

func (v *Visitor) takeErr() error {
	err := v.err
	v.err = nil
	return err
}

// reset empties the stack, keeping its capacity, and drops references.
func (v *Visitor) reset(decoding bool) {
	clear(v.ops) // keeps slots above len zero, see next
	v.ops = v.ops[:0]
	v.decoding = decoding
	v.version = 0
	v.err = nil
}

// Decoding reports whether the visitor is decoding.
func (v *Visitor) Decoding() bool { return v.decoding }

// Version returns the version of the struct being visited (0 if the type is
// not [Versioned]): when encoding the value's SerdeVersion, when decoding the
// version the peer wrote. Inside element callbacks and continuations it is
// the version of the struct that queued them.
func (v *Visitor) Version() uint32 { return v.version }

func (v *Visitor) prim(k opKind, p unsafe.Pointer) {
	o := v.next()
	o.kind, o.p = k, p
}

// Bool queues a bool field.
func (v *Visitor) Bool(p *bool) { v.prim(opBool, unsafe.Pointer(p)) }

// Int8 queues an int8 field. The other integer methods are alike: every
// integer is written in the plain form (length byte and the fewest
// little-endian bytes); signed values as their two's-complement bits in the
// unsigned type of the same width. Int and Uint have the platform's width.
func (v *Visitor) Int8(p *int8) { v.prim(opInt8, unsafe.Pointer(p)) }

// Int16 queues an int16 field.
func (v *Visitor) Int16(p *int16) { v.prim(opInt16, unsafe.Pointer(p)) }

// Int32 queues an int32 field.
func (v *Visitor) Int32(p *int32) { v.prim(opInt32, unsafe.Pointer(p)) }

// Int64 queues an int64 field.
func (v *Visitor) Int64(p *int64) { v.prim(opInt64, unsafe.Pointer(p)) }

// Int queues an int field.
func (v *Visitor) Int(p *int) { v.prim(opInt, unsafe.Pointer(p)) }

// Uint8 queues a uint8 field.
func (v *Visitor) Uint8(p *uint8) { v.prim(opUint8, unsafe.Pointer(p)) }

// Uint16 queues a uint16 field.
func (v *Visitor) Uint16(p *uint16) { v.prim(opUint16, unsafe.Pointer(p)) }

// Uint32 queues a uint32 field.
func (v *Visitor) Uint32(p *uint32) { v.prim(opUint32, unsafe.Pointer(p)) }

// Uint64 queues a uint64 field.
func (v *Visitor) Uint64(p *uint64) { v.prim(opUint64, unsafe.Pointer(p)) }

// Uint queues a uint field.
func (v *Visitor) Uint(p *uint) { v.prim(opUint, unsafe.Pointer(p)) }

// Float32 queues a float32 field, written as its IEEE 754 bits in the plain
// integer form (NaN payloads and the sign of zero are kept).
func (v *Visitor) Float32(p *float32) { v.prim(opFloat32, unsafe.Pointer(p)) }

// Float64 queues a float64 field, written like Float32.
func (v *Visitor) Float64(p *float64) { v.prim(opFloat64, unsafe.Pointer(p)) }

// Fixed8 queues a raw byte (no length prefix).
func (v *Visitor) Fixed8(p *uint8) { v.prim(opFixed8, unsafe.Pointer(p)) }

// Fixed16 queues a raw 2-byte little-endian integer (no length prefix).
func (v *Visitor) Fixed16(p *uint16) { v.prim(opFixed16, unsafe.Pointer(p)) }

// Cross queues an unsigned integer in the checked cross form.
func (v *Visitor) Cross(p *uint64) { v.prim(opCross, unsafe.Pointer(p)) }

// String queues a string field: its checked cross size, then its bytes.
// Strings larger than [Limits].MaxString fail with [ErrLimit].
func (v *Visitor) String(p *string) { v.prim(opString, unsafe.Pointer(p)) }

// Bytes queues a []byte field, encoded like a string. Decoding reuses *p's
// capacity; an empty value decodes as (*p)[:0], which is nil when *p was nil.
func (v *Visitor) Bytes(p *[]byte) { v.prim(opBytes, unsafe.Pointer(p)) }

// Struct queues a nested struct; p must be a non-nil pointer. Its Serde
// method is called when the field is reached, after its version (if it is
// [Versioned]) has been written or read.
func (v *Visitor) Struct(p Type) {
	if p == nil {
		if v.err == nil {
			v.err = errNilStruct
		}
		return
	}
	o := v.next()
	o.kind, o.x = opStruct, p
}

// Any queues a polymorphic field: the type id (checked cross, 0 for nil) and
// then the value. Decoding creates the value through the registry. Encoding
// a value whose type is not registered, or decoding an unknown id, fails with
// [ErrUnknownType].
func (v *Visitor) Any(p *Type) { v.prim(opAny, unsafe.Pointer(p)) }

// StreamOut queues a stream field read from src while encoding; a nil src
// encodes an empty stream. Read is called until it returns io.EOF (with or
// without data); [ErrNotReady] with 0 bytes makes Encode stop and wait
// ([Encoder.Waiting]); another error fails the encode, and 0 bytes with a
// nil error fails with [ErrNoProgress].
//
// StreamIn queues a stream field written to dst while decoding; each chunk's
// bytes are passed to dst.Write straight from the decoded buffer (dst must
// not retain the slice), and dst.Close is called after the final chunk. A nil
// dst discards the stream.
//
// A Serde method calls the one matching [Visitor.Decoding]; queuing StreamIn
// while encoding or StreamOut while decoding fails the call with
// [ErrBadValue]. The stream total is bounded by [Limits].MaxStream.
func (v *Visitor) StreamOut(src StreamSource) {
	o := v.next()
	o.kind = opStreamOut
	if src != nil {
		o.x = src
	}
}

// StreamIn queues a stream field written to dst while decoding; see StreamOut.
func (v *Visitor) StreamIn(dst StreamSink) {
	o := v.next()
	o.kind = opStreamIn
	if dst != nil {
		o.x = dst
	}
}

// Then queues c to run after every op queued before it has completed
// (including the whole of nested structs and containers queued before it).
// c.Continue may read those fields, which are decoded by then, and queue
// more fields; they are processed before anything queued after Then. Inside
// c, [Visitor.Version] is the version of the struct that called Then. A nil
// c is ignored. Then itself writes no bytes.
func (v *Visitor) Then(c Continuation) {
	if c == nil {
		return
	}
	o := v.next()
	o.kind, o.x = opThen, c
}

// Slice queues a slice field: its checked cross element count, then each
// element's fields queued by elem. elem may be a method expression such as
// (*serde.Visitor).Int32 or a func literal that captures nothing; neither
// allocates. Decoding reuses *p's capacity and grows it as elements arrive
// (never from the declared count alone); an empty slice decodes as (*p)[:0],
// which is nil when *p was nil. Counts above [Limits].MaxContainer fail with
// [ErrLimit].
func Slice[T any](v *Visitor, p *[]T, elem func(v *Visitor, e *T)) {
	o := v.next()
	o.kind, o.p, o.x, o.drv = opSlice, unsafe.Pointer(p), elem, sliceDriver[T]{}
}

// Map queues a map field: its checked cross entry count, then for each entry
// the key's fields (queued by key) and the value's (queued by val). Entries
// are encoded in Go's map iteration order, so the encoding of a map with
// more than one entry is not deterministic. Encoding a map allocates a key
// snapshot. Decoding clears a non-nil *p and reuses it, or makes a map when
// the count is non-zero; a later duplicate key overwrites an earlier one.
func Map[K comparable, V any](v *Visitor, p *map[K]V, key func(v *Visitor, k *K), val func(v *Visitor, e *V)) {
	o := v.next()
	o.kind, o.p, o.drv = opMap, unsafe.Pointer(p), &mapDriver[K, V]{key: key, val: val}
}

// Optional queues an optional pointer field: a bool presence flag, then the
// value's fields queued by elem. Decoding sets *p to nil when absent; when
// present it reuses a non-nil *p (zeroing it first) or allocates a new T.
func Optional[T any](v *Visitor, p **T, elem func(v *Visitor, e *T)) {
	o := v.next()
	o.kind, o.p, o.x, o.drv = opOptional, unsafe.Pointer(p), elem, optDriver[T]{}
}

// sliceDriver drives Slice; it is zero-sized, so storing it in an op does
// not allocate.
type sliceDriver[T any] struct{}

func (sliceDriver[T]) length(p unsafe.Pointer) int { return len(*(*[]T)(p)) }

func (sliceDriver[T]) prepare(p unsafe.Pointer, n uint64) {
	s := (*[]T)(p)
	if cap(*s) == 0 && n > 0 {
		// Never trust the declared count: start small and grow as
		// elements actually arrive.
		var z T
		c := uint64(1)
		if sz := uint64(unsafe.Sizeof(z)); sz > 0 {
			c = max(1, 4096/sz)
		} else {
			c = n
		}
		*s = make([]T, 0, min(n, c))
		return
	}
	*s = (*s)[:0]
}

func (sliceDriver[T]) elem(v *Visitor, p unsafe.Pointer, x any, i uint64) bool {
	s := (*[]T)(p)
	f, _ := x.(func(*Visitor, *T))
	if f == nil {
		return false
	}
	if v.decoding {
		var z T
		*s = append(*s, z)
		f(v, &(*s)[len(*s)-1])
		return true
	}
	if i >= uint64(len(*s)) {
		return false
	}
	f(v, &(*s)[i])
	return true
}

func (sliceDriver[T]) commit(unsafe.Pointer) {}

// optDriver drives Optional.
type optDriver[T any] struct{}

func (optDriver[T]) length(p unsafe.Pointer) int {
	if *(**T)(p) == nil {
		return 0
	}
	return 1
}

func (optDriver[T]) prepare(p unsafe.Pointer, n uint64) {
	pp := (**T)(p)
	switch {
	case n == 0:
		*pp = nil
	case *pp == nil:
		*pp = new(T)
	default:
		var z T
		**pp = z
	}
}

func (optDriver[T]) elem(v *Visitor, p unsafe.Pointer, x any, _ uint64) bool {
	f, _ := x.(func(*Visitor, *T))
	e := *(**T)(p)
	if f == nil || e == nil {
		return false
	}
	f(v, e)
	return true
}

func (optDriver[T]) commit(unsafe.Pointer) {}

// mapDriver drives Map. It holds the callbacks, the encoder's key snapshot
// and the entry being encoded or decoded.
type mapDriver[K comparable, V any] struct {
	key  func(v *Visitor, k *K)
	val  func(v *Visitor, e *V)
	keys []K
	k    K
	v    V
}

func (d *mapDriver[K, V]) length(p unsafe.Pointer) int {
	m := *(*map[K]V)(p)
	d.keys = make([]K, 0, len(m))
	for k := range m {
		d.keys = append(d.keys, k)
	}
	return len(d.keys)
}

func (d *mapDriver[K, V]) prepare(p unsafe.Pointer, n uint64) {
	m := (*map[K]V)(p)
	switch {
	case *m != nil:
		clear(*m)
	case n > 0:
		*m = make(map[K]V, min(n, 64))
	}
}

func (d *mapDriver[K, V]) elem(v *Visitor, p unsafe.Pointer, _ any, i uint64) bool {
	if d.key == nil || d.val == nil {
		return false
	}
	if v.decoding {
		var zk K
		var zv V
		d.k, d.v = zk, zv
	} else {
		if i >= uint64(len(d.keys)) {
			return false
		}
		// A key that is gone (or a NaN key, which never matches) encodes
		// the zero value.
		d.k = d.keys[i]
		d.v = (*(*map[K]V)(p))[d.k]
	}
	d.key(v, &d.k)
	d.val(v, &d.v)
	return true
}

func (d *mapDriver[K, V]) commit(p unsafe.Pointer) {
	(*(*map[K]V)(p))[d.k] = d.v
}
