package serde

// STUB FILE: the serde implementation replaces this file entirely. It only
// fixes the signatures so that other packages compile meanwhile.

// Registry maps type ids to factories for polymorphic fields ([Visitor.Any]).
// Register all types before the registry is shared; lookups are safe for
// concurrent use afterwards.
type Registry struct{ stub int }

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// Register maps id (non-zero) to the type produced by factory. It returns an
// error if id is 0 or taken, or the type is already registered.
func (r *Registry) Register(id uint64, factory func() Type) error { panic("stub") }

// ID returns the id registered for t's dynamic type.
func (r *Registry) ID(t Type) (uint64, bool) { panic("stub") }

// New returns a fresh value of the type registered as id.
func (r *Registry) New(id uint64) (Type, bool) { panic("stub") }

// Visitor is handed to [Type.Serde]; its methods queue one field each.
type Visitor struct{ stub int }

// Decoding reports whether the visitor is decoding.
func (v *Visitor) Decoding() bool { panic("stub") }

// Version returns the version of the struct being visited (0 if the type is
// not [Versioned]).
func (v *Visitor) Version() uint32 { panic("stub") }

// Bool queues a bool field.
func (v *Visitor) Bool(p *bool) { panic("stub") }

// Int8 queues an int8 field. The other integer methods are alike.
func (v *Visitor) Int8(p *int8)       { panic("stub") }
func (v *Visitor) Int16(p *int16)     { panic("stub") }
func (v *Visitor) Int32(p *int32)     { panic("stub") }
func (v *Visitor) Int64(p *int64)     { panic("stub") }
func (v *Visitor) Int(p *int)         { panic("stub") }
func (v *Visitor) Uint8(p *uint8)     { panic("stub") }
func (v *Visitor) Uint16(p *uint16)   { panic("stub") }
func (v *Visitor) Uint32(p *uint32)   { panic("stub") }
func (v *Visitor) Uint64(p *uint64)   { panic("stub") }
func (v *Visitor) Uint(p *uint)       { panic("stub") }
func (v *Visitor) Float32(p *float32) { panic("stub") }
func (v *Visitor) Float64(p *float64) { panic("stub") }

// Fixed8 queues a raw byte (no length prefix).
func (v *Visitor) Fixed8(p *uint8) { panic("stub") }

// Fixed16 queues a raw 2-byte little-endian integer (no length prefix).
func (v *Visitor) Fixed16(p *uint16) { panic("stub") }

// Cross queues an unsigned integer in the checked cross form.
func (v *Visitor) Cross(p *uint64) { panic("stub") }

// String queues a string field.
func (v *Visitor) String(p *string) { panic("stub") }

// Bytes queues a []byte field. Decoding reuses *p's capacity.
func (v *Visitor) Bytes(p *[]byte) { panic("stub") }

// Struct queues a nested struct; p must be a non-nil pointer.
func (v *Visitor) Struct(p Type) { panic("stub") }

// Any queues a polymorphic field: the type id (checked cross, 0 for nil) and
// then the value. Decoding creates the value through the registry.
func (v *Visitor) Any(p *Type) { panic("stub") }

// StreamOut queues a stream field read from src while encoding.
// StreamIn queues a stream field written to dst while decoding. A Serde
// method calls the one matching [Visitor.Decoding].
func (v *Visitor) StreamOut(src StreamSource) { panic("stub") }
func (v *Visitor) StreamIn(dst StreamSink)    { panic("stub") }

// Then queues c to run after every op queued before it has completed.
func (v *Visitor) Then(c Continuation) { panic("stub") }

// Slice queues a slice field; elem queues one element's fields.
func Slice[T any](v *Visitor, p *[]T, elem func(v *Visitor, e *T)) { panic("stub") }

// Map queues a map field; key and val queue one entry's key and value.
func Map[K comparable, V any](v *Visitor, p *map[K]V, key func(v *Visitor, k *K), val func(v *Visitor, e *V)) {
	panic("stub")
}

// Optional queues an optional pointer field: a bool presence flag, then the
// value. Decoding allocates *p when present.
func Optional[T any](v *Visitor, p **T, elem func(v *Visitor, e *T)) { panic("stub") }

// Encoder serializes one value at a time, a buffer at a time. The zero value
// is not usable; use [NewEncoder]. An Encoder is not safe for concurrent use
// and is meant to be reused (Reset) to avoid allocations.
type Encoder struct{ stub int }

// NewEncoder returns an encoder using reg (may be nil if no [Visitor.Any]
// fields are used) and lim.
func NewEncoder(reg *Registry, lim Limits) *Encoder { panic("stub") }

// Reset starts encoding root, dropping any unfinished value.
func (e *Encoder) Reset(root Type) { panic("stub") }

// Encode writes as much of the value as fits into buf and returns the byte
// count. done is true once the last byte has been written; it may return
// n == len(buf) and done == false, in which case the caller supplies another
// buffer. An error leaves the encoder unusable until Reset.
func (e *Encoder) Encode(buf []byte) (n int, done bool, err error) { panic("stub") }

// Decoder rebuilds one value at a time from byte slices of any size.
type Decoder struct{ stub int }

// NewDecoder returns a decoder using reg and lim.
func NewDecoder(reg *Registry, lim Limits) *Decoder { panic("stub") }

// Reset starts decoding into root, dropping any unfinished value.
func (d *Decoder) Reset(root Type) { panic("stub") }

// Decode consumes bytes from data and returns how many it used. done is true
// when the value is complete; then n may be less than len(data) and the rest
// belongs to whatever follows. When done is false all of data was consumed.
func (d *Decoder) Decode(data []byte) (n int, done bool, err error) { panic("stub") }
