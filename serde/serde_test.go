package serde_test

import (
	"io"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/serde"
)

// encodeAll encodes root through buffers of size bufSize and returns the
// concatenated bytes. It checks that every call makes progress.
func encodeAll(tb testing.TB, e *serde.Encoder, root serde.Type, bufSize int) []byte {
	tb.Helper()
	e.Reset(root)
	buf := make([]byte, bufSize)
	var out []byte
	for calls := 0; ; calls++ {
		n, done, err := e.Encode(buf)
		require.NoError(tb, err)
		out = append(out, buf[:n]...)
		if done {
			return out
		}
		require.Equal(tb, bufSize, n, "Encode returned a short count without done")
		require.Less(tb, calls, 1<<24, "encoder does not finish")
	}
}

// decodeSplit decodes data cut into pieces by cut (sizes of each piece) and
// requires the value to end exactly at the end of data.
func decodeSplit(tb testing.TB, d *serde.Decoder, root serde.Type, data []byte, cut func() int) {
	tb.Helper()
	d.Reset(root)
	for off := 0; ; {
		k := min(cut(), len(data)-off)
		n, done, err := d.Decode(data[off : off+k])
		require.NoError(tb, err)
		off += n
		if done {
			require.Equal(tb, len(data), off, "value ended early")
			return
		}
		require.Equal(tb, k, n, "Decode consumed less than given without done")
		require.Less(tb, off, len(data)+1, "decoder wants more than was encoded")
		require.NotEqual(tb, len(data), off, "decoder not done at the end of the encoding")
	}
}

func requireRichEqual(tb testing.TB, want, got *rich) {
	tb.Helper()
	require.Equal(tb, math.Float32bits(want.F32), math.Float32bits(got.F32))
	require.Equal(tb, math.Float64bits(want.F64), math.Float64bits(got.F64))
	w, g := *want, *got
	w.F32, w.F64, g.F32, g.F64 = 0, 0, 0, 0
	require.Equal(tb, w, g)
}

func TestRoundTripEveryBufferSize(t *testing.T) {
	reg := testRegistry()
	e := serde.NewEncoder(reg, serde.Limits{})
	d := serde.NewDecoder(reg, serde.Limits{})
	sizes := []int{}
	for s := 1; s <= 64; s++ {
		sizes = append(sizes, s)
	}
	sizes = append(sizes, 65, 100, 127, 255, 256, 1000, 4096, 1<<16)
	for seed := range uint64(40) {
		g := newGen(seed)
		want := g.rich()
		ref := encodeAll(t, e, want, 1<<20)
		// Whole.
		got := new(rich)
		decodeSplit(t, d, got, ref, func() int { return len(ref) })
		requireRichEqual(t, want, got)
		for _, size := range sizes {
			enc := encodeAll(t, e, want, size)
			require.Len(t, enc, len(ref), "size %d", size)
			got := new(rich)
			decodeSplit(t, d, got, enc, func() int { return size })
			requireRichEqual(t, want, got)
		}
		// 1-byte pieces and random pieces.
		got = new(rich)
		decodeSplit(t, d, got, ref, func() int { return 1 })
		requireRichEqual(t, want, got)
		for range 5 {
			got = new(rich)
			decodeSplit(t, d, got, ref, func() int { return 1 + g.r.IntN(g.r.IntN(40)+1) })
			requireRichEqual(t, want, got)
		}
	}
}

// TestDecodeReusesCapacity decodes into a reused root: []byte and slices
// keep their backing arrays when they are large enough.
func TestDecodeReusesCapacity(t *testing.T) {
	e := serde.NewEncoder(nil, serde.Limits{})
	d := serde.NewDecoder(nil, serde.Limits{})
	got := &blob{Data: make([]byte, 0, 100), Items: make([]point, 0, 10)}
	data0, items0 := &got.Data[:1][0], &got.Items[:1][0]
	for i := range 5 {
		want := &blob{ID: uint32(i), Data: []byte("hello")[:i+1], Items: []point{{1, 2}, {3, int16(i)}}}
		decodeSplit(t, d, got, encodeAll(t, e, want, 3), func() int { return 2 })
		require.Equal(t, want, got)
		require.Same(t, data0, &got.Data[0])
		require.Same(t, items0, &got.Items[0])
	}
	// An empty value keeps the (non-nil) backing array: (*p)[:0].
	decodeSplit(t, d, got, encodeAll(t, e, &blob{}, 3), func() int { return 2 })
	require.NotNil(t, got.Data)
	require.Empty(t, got.Data)
	require.Empty(t, got.Items)
}

type blob struct {
	ID    uint32
	Data  []byte
	Items []point
}

func (m *blob) Serde(v *serde.Visitor) {
	v.Uint32(&m.ID)
	v.Bytes(&m.Data)
	serde.Slice(v, &m.Items, func(v *serde.Visitor, e *point) { v.Struct(e) })
}

func TestTrailingBytesBelongToCaller(t *testing.T) {
	e := serde.NewEncoder(testRegistry(), serde.Limits{})
	d := serde.NewDecoder(testRegistry(), serde.Limits{})
	want := newGen(7).rich()
	enc := encodeAll(t, e, want, 4096)
	data := append(append([]byte{}, enc...), 0xAA, 0xBB, 0xCC)
	got := new(rich)
	d.Reset(got)
	n, done, err := d.Decode(data)
	require.NoError(t, err)
	require.True(t, done)
	require.Equal(t, len(enc), n)
	requireRichEqual(t, want, got)
	// After done: nothing more is consumed.
	n, done, err = d.Decode(data[n:])
	require.NoError(t, err)
	require.True(t, done)
	require.Zero(t, n)
}

func TestEncodeEmptyBuffer(t *testing.T) {
	e := serde.NewEncoder(nil, serde.Limits{})
	m := &point{X: 1, Y: 2}
	e.Reset(m)
	n, done, err := e.Encode(nil)
	require.NoError(t, err)
	require.False(t, done)
	require.Zero(t, n)
	buf := make([]byte, 4)
	n, done, err = e.Encode(buf)
	require.NoError(t, err)
	require.True(t, done)
	require.Equal(t, []byte{1, 1, 1, 2}, buf[:n])
	n, done, err = e.Encode(buf)
	require.NoError(t, err)
	require.True(t, done)
	require.Zero(t, n)

	// A value that writes no bytes is done even with an empty buffer.
	e.Reset(&empty{})
	n, done, err = e.Encode(nil)
	require.NoError(t, err)
	require.True(t, done)
	require.Zero(t, n)
}

type empty struct{}

func (*empty) Serde(v *serde.Visitor) { v.Then(serde.ContinueFunc(func(*serde.Visitor) {})) }

// TestExactFitIsDone checks that a value ending exactly at the end of the
// buffer (or data) reports done in the same call, even when byte-less ops
// (a continuation, an empty trailing container) follow the last byte.
func TestExactFitIsDone(t *testing.T) {
	m := &branch{Kind: 1, U: 300} // continuation after Kind, ends with U
	e := serde.NewEncoder(nil, serde.Limits{})
	e.Reset(m)
	buf := make([]byte, 5)
	n, done, err := e.Encode(buf)
	require.NoError(t, err)
	require.True(t, done)
	require.Equal(t, 5, n)

	d := serde.NewDecoder(nil, serde.Limits{})
	got := new(branch)
	d.Reset(got)
	n, done, err = d.Decode(buf)
	require.NoError(t, err)
	require.True(t, done)
	require.Equal(t, 5, n)
	require.Equal(t, m, got)

	tr := &trailing{A: 5}
	e.Reset(tr)
	n, done, err = e.Encode(buf[:4])
	require.NoError(t, err)
	require.True(t, done)
	require.Equal(t, 4, n)
	gt := &trailing{}
	d.Reset(gt)
	n, done, err = d.Decode(buf[:4])
	require.NoError(t, err)
	require.True(t, done)
	require.Equal(t, 4, n)
	require.Equal(t, tr, gt)
}

type trailing struct {
	A    uint8
	Tail []inner
	Opt  *point
}

func (m *trailing) Serde(v *serde.Visitor) {
	v.Uint8(&m.A)
	v.Struct(&empty{})
	serde.Slice(v, &m.Tail, func(v *serde.Visitor, e *inner) { v.Struct(e) })
	serde.Optional(v, &m.Opt, func(v *serde.Visitor, e *point) { v.Struct(e) })
}

// TestGoldenSample checks the byte-level sample of docs/protocol.md §10.8.
func TestGoldenSample(t *testing.T) {
	reg := serde.NewRegistry()
	require.NoError(t, reg.Register(5, func() serde.Type { return new(sampleInner) }))
	opts := "x"
	s := &sample{
		B: true, I8: -2, U16: 300, I32: -1, U64: 0, F32: 1.5, F64: -2,
		S: "hi", Raw: []byte{0xde, 0xad}, L: []uint32{1, 300}, M: map[string]uint8{"a": 7},
		OptS: &opts, Inner: sampleInner{5}, Any: &sampleInner{9}, F8: 0x7f, F16: 0x1234, C: 300,
		Stream: "abc",
	}
	want := []byte{
		0x09, 0x02, 0x01, 0x01, 0xfe, 0x02, 0x2c, 0x01, 0x04, 0xff, 0xff, 0xff, 0xff, 0x00,
		0x04, 0x00, 0x00, 0xc0, 0x3f, 0x08, 0, 0, 0, 0, 0, 0, 0, 0xc0,
		0x09, 0x02, 'h', 'i', 0x09, 0x02, 0xde, 0xad, 0x09, 0x02, 0x01, 0x01, 0x02, 0x2c, 0x01,
		0x09, 0x01, 0x09, 0x01, 'a', 0x01, 0x07, 0x00, 0x01, 0x09, 0x01, 'x', 0x01, 0x05,
		0x09, 0x05, 0x01, 0x09, 0x00, 0x7f, 0x34, 0x12, 0x11, 0x2c, 0x01,
		0x02, 0x00, 'a', 'b', 0x01, 0x00, 'c', 0x00, 0x00,
	}
	e := serde.NewEncoder(reg, serde.Limits{})
	e.Reset(s)
	buf := make([]byte, 200)
	n, done, err := e.Encode(buf)
	require.NoError(t, err)
	require.True(t, done)
	// Our encoder chunks the stream by what the source returns; the sample's
	// source returns "ab" then "c".
	require.Equal(t, want, buf[:n])

	got := &sample{}
	d := serde.NewDecoder(reg, serde.Limits{})
	decodeSplit(t, d, got, want, func() int { return 1 })
	require.Equal(t, "abc", got.sink.String())
	require.True(t, got.sink.closed)
	got.sink = nil
	s.Stream = ""
	require.Equal(t, s, got)
}

type sampleInner struct{ A uint8 }

func (m *sampleInner) Serde(v *serde.Visitor) { v.Uint8(&m.A) }

type sample struct {
	B      bool
	I8     int8
	U16    uint16
	I32    int32
	U64    uint64
	F32    float32
	F64    float64
	S      string
	Raw    []byte
	L      []uint32
	M      map[string]uint8
	Opt    *uint32
	OptS   *string
	Inner  sampleInner
	Any    serde.Type
	Any2   serde.Type
	F8     uint8
	F16    uint16
	C      uint64
	Stream string
	sink   *bufSink
}

func (m *sample) SerdeVersion() uint32 { return 2 }

func (m *sample) Serde(v *serde.Visitor) {
	v.Bool(&m.B)
	v.Int8(&m.I8)
	v.Uint16(&m.U16)
	v.Int32(&m.I32)
	v.Uint64(&m.U64)
	v.Float32(&m.F32)
	v.Float64(&m.F64)
	v.String(&m.S)
	v.Bytes(&m.Raw)
	serde.Slice(v, &m.L, (*serde.Visitor).Uint32)
	serde.Map(v, &m.M, (*serde.Visitor).String, (*serde.Visitor).Uint8)
	serde.Optional(v, &m.Opt, (*serde.Visitor).Uint32)
	serde.Optional(v, &m.OptS, (*serde.Visitor).String)
	v.Struct(&m.Inner)
	v.Any(&m.Any)
	v.Any(&m.Any2)
	v.Fixed8(&m.F8)
	v.Fixed16(&m.F16)
	v.Cross(&m.C)
	if v.Decoding() {
		m.sink = &bufSink{}
		v.StreamIn(m.sink)
	} else {
		v.StreamOut(&piecesSource{pieces: []string{m.Stream[:2], m.Stream[2:]}})
	}
}

type piecesSource struct{ pieces []string }

func (s *piecesSource) Read(p []byte) (int, error) {
	if len(s.pieces) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.pieces[0])
	s.pieces[0] = s.pieces[0][n:]
	if s.pieces[0] == "" {
		s.pieces = s.pieces[1:]
	}
	return n, nil
}

type bufSink struct {
	b      []byte
	closed bool
}

func (s *bufSink) Write(p []byte) (int, error) { s.b = append(s.b, p...); return len(p), nil }
func (s *bufSink) Close() error                { s.closed = true; return nil }
func (s *bufSink) String() string              { return string(s.b) }

func TestFloatBits(t *testing.T) {
	vals64 := []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(),
		math.Float64frombits(0x7ff0000000000001), math.Float64frombits(0xfff8dead0000beef), math.SmallestNonzeroFloat64, math.MaxFloat64}
	vals32 := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.NaN()),
		math.Float32frombits(0x7f800001), math.Float32frombits(0xffc0beef), math.SmallestNonzeroFloat32}
	m := &floats{F64: vals64, F32: vals32}
	e := serde.NewEncoder(nil, serde.Limits{})
	d := serde.NewDecoder(nil, serde.Limits{})
	for size := 1; size < 20; size++ {
		got := &floats{}
		decodeSplit(t, d, got, encodeAll(t, e, m, size), func() int { return size })
		require.Len(t, got.F64, len(vals64))
		require.Len(t, got.F32, len(vals32))
		for i := range vals64 {
			require.Equal(t, math.Float64bits(vals64[i]), math.Float64bits(got.F64[i]))
		}
		for i := range vals32 {
			require.Equal(t, math.Float32bits(vals32[i]), math.Float32bits(got.F32[i]))
		}
	}
}

type floats struct {
	F64 []float64
	F32 []float32
}

func (m *floats) Serde(v *serde.Visitor) {
	serde.Slice(v, &m.F64, (*serde.Visitor).Float64)
	serde.Slice(v, &m.F32, (*serde.Visitor).Float32)
}

// TestIntegerEdges round-trips the extremes of every integer width and checks
// the encoded length is minimal.
func TestIntegerEdges(t *testing.T) {
	e := serde.NewEncoder(nil, serde.Limits{})
	d := serde.NewDecoder(nil, serde.Limits{})
	for _, m := range []*ints{
		{},
		{math.MinInt8, math.MinInt16, math.MinInt32, math.MinInt64, math.MinInt, 0, 0, 0, 0, 0},
		{math.MaxInt8, math.MaxInt16, math.MaxInt32, math.MaxInt64, math.MaxInt, math.MaxUint8, math.MaxUint16, math.MaxUint32, math.MaxUint64, math.MaxUint},
		{-1, -1, -1, -1, -1, 1, 1, 1, 1, 1},
	} {
		for size := 1; size <= 10; size++ {
			got := &ints{}
			decodeSplit(t, d, got, encodeAll(t, e, m, size), func() int { return size })
			require.Equal(t, m, got)
		}
	}
	enc := encodeAll(t, e, &ints{I8: -1, I64: -2, U16: 0x100}, 64)
	require.Equal(t, []byte{1, 0xff, 0, 0, 8, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 2, 0, 1, 0, 0, 0}, enc)
}

type ints struct {
	I8  int8
	I16 int16
	I32 int32
	I64 int64
	I   int
	U8  uint8
	U16 uint16
	U32 uint32
	U64 uint64
	U   uint
}

func (m *ints) Serde(v *serde.Visitor) {
	v.Int8(&m.I8)
	v.Int16(&m.I16)
	v.Int32(&m.I32)
	v.Int64(&m.I64)
	v.Int(&m.I)
	v.Uint8(&m.U8)
	v.Uint16(&m.U16)
	v.Uint32(&m.U32)
	v.Uint64(&m.U64)
	v.Uint(&m.U)
}
