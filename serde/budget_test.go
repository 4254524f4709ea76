package serde_test

import (
	"bytes"
	"fmt"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/serde"
)

// recBudget is a ValueBudget that lends while lend is set and records
// every call.
type recBudget struct {
	lend  bool
	asked []int    // Lend's n
	ends  []string // End's arguments, "n/got/lent"
}

func (b *recBudget) Lend(n int) bool { b.asked = append(b.asked, n); return b.lend }

func (b *recBudget) End(n, got int, lent bool) {
	b.ends = append(b.ends, fmt.Sprintf("%d/%d/%v", n, got, lent))
}

// TestDecodeValueBudget: a large []byte or string value whose array the
// budget lends is decoded into one array of exactly its declared size,
// allocated before its bytes arrive, with no segment taken and its bytes
// intact, and the budget hears its end; a refused loan grows the value in
// segments as without a budget; small values and a recycled []byte that
// already has the capacity ask for nothing.
func TestDecodeValueBudget(t *testing.T) {
	const n = 1<<20 + 3
	lim := serde.Limits{MaxString: 1 << 30}
	payload := patterned(n, 7)
	for _, kind := range []string{"bytes", "string"} {
		for _, lend := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/lend=%v", kind, lend), func(t *testing.T) {
				msg, root, value := valueKind(kind, payload)
				wire := encodeAll(t, serde.NewEncoder(nil, lim), msg, 64<<10)
				d := serde.NewDecoder(nil, lim)
				pool := newRecPool()
				pool.always = true
				d.SetSegmentPool(pool)
				b := &recBudget{lend: lend}
				d.SetValueBudget(b)
				r := root()
				decodePieces(t, d, r, wire, 4<<10)
				require.True(t, bytes.Equal(payload, value(r)), "value differs")
				require.Equal(t, []int{n}, b.asked)
				require.Equal(t, []string{fmt.Sprintf("%d/%d/%v", n, n, lend)}, b.ends)
				if lend {
					require.Zero(t, pool.taken, "segments taken for a lent value")
					if kind == "bytes" {
						require.Equal(t, n, cap(r.(*bytesMsg).B), "the lent array is exactly the declared size")
					}
				} else {
					require.Positive(t, pool.taken, "a refused value grows in segments")
					require.False(t, pool.overlaps(value(r)))
				}
			})
		}
	}

	t.Run("small and recycled", func(t *testing.T) {
		d := serde.NewDecoder(nil, lim)
		b := &recBudget{lend: true}
		d.SetValueBudget(b)
		small := patterned(32<<10, 1)
		r := &bytesMsg{}
		decodePieces(t, d, r, encodeAll(t, serde.NewEncoder(nil, lim), &bytesMsg{B: small}, 64<<10), 4<<10)
		require.Equal(t, small, r.B)
		require.Empty(t, b.asked, "a 32 KiB value is not large")
		require.Empty(t, b.ends)

		array := make([]byte, 0, n)
		r = &bytesMsg{B: array}
		decodePieces(t, d, r, encodeAll(t, serde.NewEncoder(nil, lim), &bytesMsg{B: payload}, 64<<10), 4<<10)
		require.True(t, bytes.Equal(payload, r.B))
		require.Same(t, unsafe.SliceData(array[:1]), unsafe.SliceData(r.B), "decoded into the recycled array")
		require.Empty(t, b.asked, "a []byte with the capacity asks for nothing")
		require.Equal(t, []string{fmt.Sprintf("%d/%d/false", n, n)}, b.ends, "its end is still reported")
	})
}

// TestDecodeValueBudgetAbandoned: a large value abandoned by Reset, lent
// or not, is reported with the bytes that had arrived (none, when only its
// declared size had); a value over MaxString asks for nothing.
func TestDecodeValueBudgetAbandoned(t *testing.T) {
	const n = 4 << 20
	lim := serde.Limits{MaxString: 1 << 30}
	wire := encodeAll(t, serde.NewEncoder(nil, lim), &bytesMsg{B: patterned(n, 3)}, 64<<10)
	head := len(wire) - n // the declared size's bytes
	for _, lend := range []bool{true, false} {
		for _, got := range []int{0, 1, 100 << 10, n - 1} {
			d := serde.NewDecoder(nil, lim)
			b := &recBudget{lend: lend}
			d.SetValueBudget(b)
			d.Reset(&bytesMsg{})
			k, done, err := d.Decode(wire[:head+got])
			require.NoError(t, err)
			require.False(t, done)
			require.Equal(t, head+got, k)
			require.Empty(t, b.ends)
			d.Reset(&bytesMsg{})
			require.Equal(t, []string{fmt.Sprintf("%d/%d/%v", n, got, lend)}, b.ends, "lend %v, %d bytes arrived", lend, got)
			d.Reset(&bytesMsg{})
			require.Len(t, b.ends, 1, "reported once")
		}
	}

	small := serde.Limits{MaxString: 1 << 20}
	d := serde.NewDecoder(nil, small)
	b := &recBudget{lend: true}
	d.SetValueBudget(b)
	d.Reset(&bytesMsg{})
	_, _, err := d.Decode(wire[:head])
	require.ErrorIs(t, err, serde.ErrLimit)
	d.Reset(&bytesMsg{})
	require.Empty(t, b.asked)
	require.Empty(t, b.ends)
}

// valueKind returns, for kind "bytes" or "string", a message whose one
// field holds payload, a function making an empty one to decode into, and
// one returning the decoded field's bytes (a string's without a copy, so
// that a test can tell which array they are in).
func valueKind(kind string, payload []byte) (msg serde.Type, root func() serde.Type, value func(serde.Type) []byte) {
	if kind == "string" {
		return &strMsg{S: string(payload)}, func() serde.Type { return &strMsg{} },
			func(r serde.Type) []byte { return unsafe.Slice(unsafe.StringData(r.(*strMsg).S), len(r.(*strMsg).S)) }
	}
	return &bytesMsg{B: payload}, func() serde.Type { return &bytesMsg{} },
		func(r serde.Type) []byte { return r.(*bytesMsg).B }
}

// lentBudget is a recBudget that also records the arrays it lends
// (serde.LentArrays): their length and capacity when handed over.
type lentBudget struct {
	recBudget
	arrays [][]byte
	shapes []string // "len/cap"
}

func (b *lentBudget) Lent(a []byte) {
	b.arrays = append(b.arrays, a)
	b.shapes = append(b.shapes, fmt.Sprintf("%d/%d", len(a), cap(a)))
}

// TestDecodeLentArrays: a budget that implements LentArrays is handed each
// array it lends, empty and of the value's declared size, before any byte
// of the value is written, and that array becomes the value; an array the
// budget refused, a small value and a recycled []byte are not handed over.
func TestDecodeLentArrays(t *testing.T) {
	const n = 1<<20 + 3
	lim := serde.Limits{MaxString: 1 << 30}
	payload := patterned(n, 5)
	for _, kind := range []string{"bytes", "string"} {
		t.Run(kind, func(t *testing.T) {
			msg, root, value := valueKind(kind, payload)
			wire := encodeAll(t, serde.NewEncoder(nil, lim), msg, 64<<10)
			d := serde.NewDecoder(nil, lim)
			b := &lentBudget{recBudget: recBudget{lend: true}}
			d.SetValueBudget(b)
			r := root()
			d.Reset(r)
			head := len(wire) - n
			_, _, err := d.Decode(wire[:head]) // the declared size only
			require.NoError(t, err)
			require.Equal(t, []string{fmt.Sprintf("0/%d", n)}, b.shapes, "handed over at the value's start")
			r = root() // abandoned; whole now
			decodePieces(t, d, r, wire, 4<<10)
			require.True(t, bytes.Equal(payload, value(r)))
			require.Len(t, b.arrays, 2, "a second decode, a second array")
			require.Same(t, unsafe.SliceData(b.arrays[1][:1]), unsafe.SliceData(value(r)), "the array handed over is the value's")

			b.lend = false
			b.arrays, b.shapes = nil, nil
			decodePieces(t, d, root(), wire, 4<<10)
			require.Empty(t, b.shapes, "a refused loan hands nothing over")
		})
	}

	d := serde.NewDecoder(nil, lim)
	b := &lentBudget{recBudget: recBudget{lend: true}}
	d.SetValueBudget(b)
	decodePieces(t, d, &bytesMsg{}, encodeAll(t, serde.NewEncoder(nil, lim), &bytesMsg{B: patterned(32<<10, 1)}, 64<<10), 4<<10)
	decodePieces(t, d, &bytesMsg{B: make([]byte, 0, n)}, encodeAll(t, serde.NewEncoder(nil, lim), &bytesMsg{B: payload}, 64<<10), 4<<10)
	require.Empty(t, b.shapes, "a small value and a recycled array hand nothing over")
}
