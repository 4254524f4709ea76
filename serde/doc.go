// Package serde is ipcframe's resumable serializer.
//
// A message is a plain Go struct whose pointer implements [Type]: one method,
// Serde, lists the struct's fields by calling the [Visitor]. The same method
// serves encoding and decoding. Nothing is generated and nothing is found by
// reflection.
//
// An [Encoder] turns a value into bytes one caller-supplied buffer at a time
// and a [Decoder] rebuilds a value from byte slices of any size. Both can stop
// at any byte and resume with the next buffer, so a message never has to be
// held in memory as a whole: a 100 GB stream field is produced and consumed a
// buffer at a time.
//
// # How it works
//
// Serde does not write bytes itself. Each Visitor call pushes an operation
// (op) that refers to the field through its pointer; the encoder or decoder
// runs the ops in field order against the current buffer. When a buffer is
// full (encoding) or used up (decoding) the op keeps its progress and the next
// call continues from there. A nested struct's Serde method is called only
// when its op is reached, so a decoder can branch on values it has already
// decoded: the struct's version ([Versioned]) and any value read before a
// [Visitor.Then] continuation.
//
// # Wire encodings
//
// The primitive encodings are SolidFrame's serialization v2 (see
// docs/protocol.md for the byte-level specification):
//
//   - bool: one byte, 0 or 1.
//   - integers of every width: a length byte N (0..8) followed by N
//     little-endian bytes, the fewest that hold the value; 0 is the single
//     byte 0x00. Signed integers are written as their two's-complement
//     bit pattern in the unsigned type of the same width.
//   - float32/float64: the IEEE 754 bits as a 4- or 8-byte integer in the
//     plain integer form above.
//   - sizes (string, []byte, slice, map lengths), struct versions and type ids:
//     the checked cross integer form, a prefix byte (N<<3)|popcount(N) followed
//     by N little-endian bytes; see [AppendCross].
//   - string and []byte: checked size, then the raw bytes.
//   - slice: checked element count, then each element; map: checked entry
//     count, then each key followed by its value, in Go's map iteration
//     order (so a map's encoding is not deterministic).
//   - optional pointer: a bool, then the value when true.
//   - nested struct: its fields inline; a [Versioned] struct (the root
//     value included) writes its checked version first.
//   - polymorphic field ([Visitor.Any]): checked type id from the
//     [Registry] (0 for nil, nothing follows), then the value as a struct.
//   - Fixed8 and Fixed16: one raw byte, or two raw little-endian bytes.
//   - stream: chunks, each a 2-byte little-endian length and that many bytes,
//     ended by a chunk of length 0.
//
// # Driving an Encoder or Decoder
//
// [Encoder.Encode] writes at least one byte per call whenever len(buf) > 0
// and the value is unfinished; it returns n < len(buf) only together with
// done. [Decoder.Decode] consumes all of data unless the value ends inside
// it, in which case it returns done and the count used. Work that needs no
// bytes (a struct without version, a continuation, the end of a container)
// is done eagerly, so a value that ends exactly at the end of a buffer is
// reported done by that call. An error sticks until Reset.
//
// Between Encode calls, [Encoder.Borrow] may take the next bytes of a
// []byte or string field under way without copying them: it returns the
// field's own memory and advances as if Encode had written them (ipc sends
// large values that way, with writev). [Encoder.Borrowable] says how many
// are left. [Encoder.LendStream] does the same for a stream field whose
// source is a [StreamLender]: the next piece's bytes are the source's own
// memory, lent until its Release.
//
// A Serde method, an element callback and a continuation run on the
// goroutine calling Encode or Decode, when their op is reached. While
// encoding, the fields are read when they are reached, so the value must not
// change until done.
//
// # Allocation
//
// Ops refer to fields through pointers and container callbacks are stored
// as func values, so queuing them does not allocate; the op stack is reused
// across Reset. Encoding primitives, strings, []byte, slices, optionals and
// nested structs does not allocate; neither does decoding them into a reused
// value whose slices have the capacity (strings allocate their bytes). Maps,
// Any values, new optionals and user continuations built from capturing
// closures allocate.
//
// # Limits
//
// [Limits] bounds strings, containers and streams. A decoder never allocates
// far ahead of the bytes it has received (unless its ValueBudget lends, see
// below): a string that declares 4 GB grows only
// as its bytes arrive, and fails with [ErrLimit] as soon as the declared size
// exceeds the limit. A [SegmentPool] (Decoder.SetSegmentPool) lets a decoder
// reuse the arrays a large value grows in from one value to the next; it
// hands out only the sizes the decoder would have allocated. A
// [ValueBudget] (Decoder.SetValueBudget) is the one way to trust a declared
// size ahead of the bytes: the decoder asks it before growing a value over
// 32 KiB, and when it lends the value's whole array the bytes are copied
// once, straight into it. Its owner bounds what it lends (ipc: per
// connection, no value larger than the largest value that connection
// delivered in full, and twice that over all its values under way). A
// budget that implements [LentArrays] is also handed each array it lends,
// before any byte is written into it (ipc faults the array's pages in on
// another goroutine).
package serde
