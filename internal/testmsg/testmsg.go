// Package testmsg holds the message types and payload pattern shared by
// ipcframe's tests, ported from SolidFrame's mprpc test suite: payloads are
// strings whose length is rounded up to a multiple of 8, filled with an
// 88-byte printable pattern in 64-bit words rotated by the message index, and
// checked byte-exact on receipt.
package testmsg

import (
	"bytes"
	"fmt"

	"github.com/ipcframe/ipcframe/serde"
)

// Table15 is SolidFrame's "Table15" of message sizes, used in this order.
var Table15 = []int{100000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 512000, 1024000, 2048000, 4096000, 8192000, 16384000}

// pattern is the printable non-blank ASCII characters '!'..'~' truncated to a
// multiple of 8 (88 bytes).
var pattern = func() []byte {
	var b []byte
	for c := byte('!'); c <= '~'; c++ {
		b = append(b, c)
	}
	return b[:len(b)/8*8]
}()

const words = 88 / 8

// Size rounds n up to a multiple of 8.
func Size(n int) int { return (n + 7) / 8 * 8 }

// rotated returns the 88-byte pattern rotated left by idx words.
func rotated(idx int) []byte {
	w := idx % words
	r := make([]byte, 0, len(pattern))
	r = append(r, pattern[w*8:]...)
	return append(r, pattern[:w*8]...)
}

// Payload returns the payload of message idx with at least n bytes.
func Payload(idx, n int) []byte {
	n = Size(n)
	b := make([]byte, n)
	r := rotated(idx)
	k := copy(b, r)
	for k < n {
		k += copy(b[k:], b[:k]) // doubling: b[:k] is a whole number of patterns
	}
	return b
}

// Check reports whether b is the payload of message idx of length n.
func Check(idx, n int, b []byte) error {
	n = Size(n)
	if len(b) != n {
		return fmt.Errorf("testmsg: message %d: length %d, want %d", idx, len(b), n)
	}
	r := rotated(idx)
	for off := 0; off < n; off += len(r) {
		end := min(off+len(r), n)
		if !bytes.Equal(b[off:end], r[:end-off]) {
			return fmt.Errorf("testmsg: message %d: bad content at byte %d", idx, off)
		}
	}
	return nil
}

// Message is the test message: an index, a payload and a nested struct
// (so that resumable nesting is exercised end to end).
type Message struct {
	Idx   uint32
	Str   []byte
	Meta  Meta
	Flags uint64
}

// Meta is a small nested struct.
type Meta struct {
	Name string
	Seq  int64
}

// Serde implements serde.Type.
func (m *Meta) Serde(v *serde.Visitor) {
	v.String(&m.Name)
	v.Int64(&m.Seq)
}

// Serde implements serde.Type.
func (m *Message) Serde(v *serde.Visitor) {
	v.Uint32(&m.Idx)
	v.Bytes(&m.Str)
	v.Struct(&m.Meta)
	v.Uint64(&m.Flags)
}

// New returns message idx of size n.
func New(idx, n int) *Message {
	return &Message{Idx: uint32(idx), Str: Payload(idx, n), Meta: Meta{Name: "m", Seq: int64(idx)}}
}

// Verify checks m as message idx of size n.
func Verify(m *Message, n int) error {
	if m.Meta.Seq != int64(m.Idx) || m.Meta.Name != "m" {
		return fmt.Errorf("testmsg: message %d: bad meta %+v", m.Idx, m.Meta)
	}
	return Check(int(m.Idx), n, m.Str)
}

// Request and Response are distinct request and response types
// (clientserver_sendrequest).
type Request struct {
	Idx uint32
	Str []byte
}

// Serde implements serde.Type.
func (m *Request) Serde(v *serde.Visitor) { v.Uint32(&m.Idx); v.Bytes(&m.Str) }

// Response answers a Request.
type Response struct {
	Idx   uint32
	Error uint32
	Str   []byte
}

// Serde implements serde.Type.
func (m *Response) Serde(v *serde.Visitor) { v.Uint32(&m.Idx); v.Uint32(&m.Error); v.Bytes(&m.Str) }
