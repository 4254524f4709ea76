package serde

import (
	"encoding/binary"
	"math/bits"
)

// MaxCrossLen is the longest encoding of a checked cross integer or a plain
// integer: one prefix byte and eight value bytes.
const MaxCrossLen = 9

// byteLen returns the number of bytes needed to hold v (0 for 0).
func byteLen(v uint64) int {
	return (bits.Len64(v) + 7) / 8
}

// CrossLen returns the length in bytes of v's checked cross integer encoding.
func CrossLen(v uint64) int { return 1 + byteLen(v) }

// AppendCross appends v in the checked cross integer form used for sizes,
// versions and framing fields: a prefix byte (N<<3)|popcount(N), where N is the
// number of value bytes (0..8), then N little-endian bytes. Zero is the single
// byte 0x00.
func AppendCross(b []byte, v uint64) []byte {
	n := byteLen(v)
	b = append(b, byte(n<<3|bits.OnesCount8(uint8(n))))
	for i := 0; i < n; i++ {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// PutCross writes v's checked cross integer form to the front of b and
// returns the number of bytes written. It returns 0 when b is too short.
func PutCross(b []byte, v uint64) int {
	n := byteLen(v)
	if len(b) < 1+n {
		return 0
	}
	b[0] = byte(n<<3 | bits.OnesCount8(uint8(n)))
	for i := 0; i < n; i++ {
		b[1+i] = byte(v >> (8 * i))
	}
	return 1 + n
}

// CrossPrefixLen validates the prefix byte of a checked cross integer and
// returns the total encoded length (prefix included).
func CrossPrefixLen(prefix byte) (int, error) {
	n := int(prefix >> 3)
	if n > 8 || int(prefix&7) != bits.OnesCount8(uint8(n)) {
		return 0, ErrBadCross
	}
	return 1 + n, nil
}

// ParseCross decodes a checked cross integer from the front of b. It returns
// the value and the bytes used; n == 0 with a nil error means b is too short
// to hold the whole encoding. A prefix whose check bits do not match fails
// with [ErrBadCross].
func ParseCross(b []byte) (v uint64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	total, err := CrossPrefixLen(b[0])
	if err != nil {
		return 0, 0, err
	}
	if len(b) < total {
		return 0, 0, nil
	}
	for i := total - 1; i >= 1; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, total, nil
}

// PlainLen returns the length in bytes of v's plain integer encoding.
func PlainLen(v uint64) int { return 1 + byteLen(v) }

// AppendPlain appends v in the plain integer form used inside serialized
// values: a length byte N (0..8), then N little-endian bytes.
func AppendPlain(b []byte, v uint64) []byte {
	n := byteLen(v)
	b = append(b, byte(n))
	for i := 0; i < n; i++ {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// PutPlain writes v's plain integer form to the front of b and returns the
// number of bytes written, or 0 when b is too short.
func PutPlain(b []byte, v uint64) int {
	n := byteLen(v)
	if len(b) < 1+n {
		return 0
	}
	b[0] = byte(n)
	for i := 0; i < n; i++ {
		b[1+i] = byte(v >> (8 * i))
	}
	return 1 + n
}

// ParsePlain decodes a plain integer of at most maxBytes value bytes from the
// front of b. n == 0 with a nil error means b is too short. A length byte
// above maxBytes fails with [ErrIntOverflow].
func ParsePlain(b []byte, maxBytes int) (v uint64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	l := int(b[0])
	if l > maxBytes {
		return 0, 0, ErrIntOverflow
	}
	if len(b) < 1+l {
		return 0, 0, nil
	}
	for i := l; i >= 1; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, 1 + l, nil
}

// le16 and putLE16 are the 2-byte little-endian helpers used by stream chunks.
func le16(b []byte) uint16       { return binary.LittleEndian.Uint16(b) }
func putLE16(b []byte, v uint16) { binary.LittleEndian.PutUint16(b, v) }
