package serde_test

import (
	"testing"

	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// zsEmpty is a zero-size element: decoding it consumes no byte.
type zsEmpty struct{}

func (*zsEmpty) Serde(*serde.Visitor) {}

// zsNested is a slice of slices of zero-size elements.
type zsNested struct{ Outer [][]zsEmpty }

func (m *zsNested) Serde(v *serde.Visitor) {
	serde.Slice(v, &m.Outer, func(v *serde.Visitor, in *[]zsEmpty) {
		serde.Slice(v, in, func(v *serde.Visitor, e *zsEmpty) { v.Struct(e) })
	})
}

func zsEncode(t *testing.T, m serde.Type) []byte {
	t.Helper()
	e := serde.NewEncoder(nil, serde.Limits{})
	e.Reset(m)
	buf := make([]byte, 1<<20)
	n, done, err := e.Encode(buf)
	require.NoError(t, err)
	require.True(t, done)
	return buf[:n]
}

// TestDecodeZeroSizeElementsBounded: nested slices of zero-size elements
// let a few bytes declare count×count elements; the decoder bounds the
// elements that consume no byte to MaxContainer per value, so the work is
// bounded by the bytes (each count is at most MaxContainer, and each
// element that is not free costs a byte).
func TestDecodeZeroSizeElementsBounded(t *testing.T) {
	const n = 1000
	lim := serde.Limits{MaxContainer: n}

	// n slices of n empty elements: every count is within the limit, but
	// n*n elements come from about 3n bytes.
	in := &zsNested{Outer: make([][]zsEmpty, n)}
	for i := range in.Outer {
		in.Outer[i] = make([]zsEmpty, n)
	}
	b := zsEncode(t, in)
	require.Less(t, len(b), 4*n)
	d := serde.NewDecoder(nil, lim)
	d.Reset(&zsNested{})
	_, _, err := d.Decode(b)
	require.ErrorIs(t, err, serde.ErrLimit)

	// One slice of n empty elements is within the bound.
	ok := &zsNested{Outer: [][]zsEmpty{make([]zsEmpty, n)}}
	d.Reset(&zsNested{})
	var out zsNested
	d.Reset(&out)
	_, done, err := d.Decode(zsEncode(t, ok))
	require.NoError(t, err)
	require.True(t, done)
	require.Len(t, out.Outer, 1)
	require.Len(t, out.Outer[0], n)
}
