package serde_test

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/serde"
)

// TestBorrowMatchesEncode encodes rich values alternating Encode into small
// buffers with Borrow: the concatenation equals the plain encoding, Borrow
// returns only string and []byte contents (after their length prefix):
// the result decodes to the value.
func TestBorrowMatchesEncode(t *testing.T) {
	reg := testRegistry()
	e := serde.NewEncoder(reg, serde.Limits{})
	d := serde.NewDecoder(reg, serde.Limits{})
	for seed := range uint64(40) {
		g := newGen(seed)
		want := g.rich()
		ref := encodeAll(t, e, want, 1<<20)
		for _, step := range []int{1, 3, 7, 64} {
			e.Reset(want)
			buf := make([]byte, step)
			var out []byte
			borrowed := 0
			for calls := 0; ; calls++ {
				require.Less(t, calls, 1<<20, "encoder does not finish")
				avail := e.Borrowable()
				if b := e.Borrow(step); b != nil {
					require.Equal(t, min(avail, step), len(b))
					require.NotEmpty(t, b)
					out = append(out, b...)
					borrowed += len(b)
					continue
				}
				require.Zero(t, avail)
				n, done, err := e.Encode(buf)
				require.NoError(t, err)
				out = append(out, buf[:n]...)
				if done {
					break
				}
			}
			// Map order varies between encodings: compare lengths and
			// the decoded value.
			require.Len(t, out, len(ref), "seed %d step %d", seed, step)
			got := new(rich)
			decodeSplit(t, d, got, out, func() int { return len(out) })
			requireRichEqual(t, want, got)
			if step == 1 && (len(want.S) > 0 || len(want.B) > 0) {
				require.Positive(t, borrowed, "seed %d step %d", seed, step)
			}
		}
	}
}

// TestBorrowOutsideRawField returns nil before a value, on a fixed-size
// field, after an error and after the end, and leaves the encoding intact.
func TestBorrowOutsideRawField(t *testing.T) {
	e := serde.NewEncoder(nil, serde.Limits{})
	require.Nil(t, e.Borrow(10), "before Reset")
	v := &rich{I32: 5, B: []byte("hello"), S: "world"}
	ref := encodeAll(t, e, v, 1<<10)
	e.Reset(v)
	require.Nil(t, e.Borrow(10), "at the root struct")
	require.Nil(t, e.Borrow(0))
	buf := make([]byte, 1<<10)
	n, done, err := e.Encode(buf)
	require.NoError(t, err)
	require.True(t, done)
	require.Equal(t, ref, buf[:n])
	require.Nil(t, e.Borrow(10), "after the end")
}

// TestBorrowAliasesField: the borrowed bytes are the field's own memory, a
// []byte's and a string's, not a copy, taken in pieces of at most max.
func TestBorrowAliasesField(t *testing.T) {
	e := serde.NewEncoder(nil, serde.Limits{})
	v := &rich{B: []byte("0123456789"), S: "abcdefghij"}
	ref := encodeAll(t, e, v, 1<<10)
	e.Reset(v)
	buf := make([]byte, 1)
	var out []byte
	pieces := 0
	for calls := 0; calls < 1<<10; calls++ {
		if b := e.Borrow(4); b != nil {
			require.LessOrEqual(t, len(b), 4)
			require.True(t, aliasesField(v, b), "borrowed bytes are not the field's memory")
			out = append(out, b...)
			pieces++
			continue
		}
		n, done, err := e.Encode(buf)
		require.NoError(t, err)
		out = append(out, buf[:n]...)
		if done {
			break
		}
	}
	require.Equal(t, ref, out)
	require.Equal(t, 6, pieces, "3 pieces of 4, 4 and 2 bytes per field")
}

// aliasesField reports whether b lies inside v's string or []byte field.
func aliasesField(v *rich, b []byte) bool {
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	in := func(base unsafe.Pointer, n int) bool {
		a := uintptr(base)
		return n > 0 && p >= a && p+uintptr(len(b)) <= a+uintptr(n)
	}
	return in(unsafe.Pointer(unsafe.SliceData(v.B)), len(v.B)) || in(unsafe.Pointer(unsafe.StringData(v.S)), len(v.S))
}
