package serde

// This file fixes serde's public API. Bodies marked "stub" are placeholders
// that the implementation replaces.

// Type is implemented (with a pointer receiver) by every serializable struct.
// Serde lists the struct's fields, in wire order, by calling v's methods. It
// is called once per value, both when encoding and when decoding, and must
// not read fields that are decoded later in the same call (see
// [Visitor.Then] for branching on decoded values).
type Type interface {
	Serde(v *Visitor)
}

// Versioned is implemented by a [Type] that carries a per-type version. The
// version is written, as a checked cross integer, before the struct's fields;
// inside Serde, [Visitor.Version] returns the version being encoded (the
// value of SerdeVersion) or the one that was decoded from the peer.
type Versioned interface {
	Type
	SerdeVersion() uint32
}

// Continuation is a deferred step: [Visitor.Then] runs it when the ops queued
// before it have completed, so it may read fields decoded just before it and
// queue further fields.
type Continuation interface {
	Continue(v *Visitor)
}

// ContinueFunc adapts a function to [Continuation]. A func literal that
// captures variables allocates; hot paths should implement Continuation on a
// pointer they already hold.
type ContinueFunc func(v *Visitor)

// Continue calls f(v).
func (f ContinueFunc) Continue(v *Visitor) { f(v) }

// StreamSource produces the bytes of a stream field while encoding. Read has
// io.Reader's contract, with io.EOF ending the stream, and may also return
// [ErrNotReady] with no bytes to make the encoder stop and wait
// ([Encoder.Waiting]). It runs on the encoding goroutine (an event loop in
// ipc) and should not block for long: ipc.AsyncSource reads a slow source
// on its own goroutine instead.
type StreamSource interface {
	Read(p []byte) (int, error)
}

// StreamLender is a StreamSource that can also hand out its next bytes
// without copying them ([Encoder.LendStream]): Lend returns up to max of
// them, its own memory, and counts them as read, or nil when none are ready
// (the encoder then calls Read). The bytes must stay unchanged until the
// caller of LendStream calls Release (ipc's writer: once the kernel has
// taken them, after the write that carries them returns); Release returns
// every piece lent since the last Release. ipc.AsyncSource is one.
type StreamLender interface {
	StreamSource
	Lend(max int) []byte
	Release()
}

// StreamSink consumes the bytes of a stream field while decoding. Write has
// io.Writer's contract; a returned error fails the decode. Close is called
// once, after the final chunk.
type StreamSink interface {
	Write(p []byte) (int, error)
	Close() error
}

// Limits bounds what a decoder accepts and an encoder produces. A zero field
// means the default shown; a negative value is not allowed.
type Limits struct {
	// MaxString is the largest string or []byte, in bytes. Default 64 MiB.
	MaxString uint64
	// MaxContainer is the largest slice or map, in elements. Default 1<<20.
	MaxContainer uint64
	// MaxStream is the largest stream field, in bytes. Default: unlimited
	// (1<<63).
	MaxStream uint64
}

// Default limits.
const (
	DefaultMaxString    = 64 << 20
	DefaultMaxContainer = 1 << 20
	DefaultMaxStream    = 1 << 63
)

// WithDefaults returns l with zero fields replaced by the defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxString == 0 {
		l.MaxString = DefaultMaxString
	}
	if l.MaxContainer == 0 {
		l.MaxContainer = DefaultMaxContainer
	}
	if l.MaxStream == 0 {
		l.MaxStream = DefaultMaxStream
	}
	return l
}
