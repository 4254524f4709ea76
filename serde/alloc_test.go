package serde_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/serde"
)

// hot is a message of primitives, []byte, slices, optionals and nested
// structs: encoding it, and decoding it into a reused value, must not
// allocate in steady state.
type hot struct {
	ID    uint64
	Flags uint32
	Neg   int16
	Score float64
	OK    bool
	Ver   hotVer
	Data  []byte
	Ints  []int32
	Pts   []point
	Opt   *point
	K     uint8
	Alt   uint32
}

type hotVer struct{ A, B uint16 }

func (m *hotVer) SerdeVersion() uint32 { return 3 }
func (m *hotVer) Serde(v *serde.Visitor) {
	v.Uint16(&m.A)
	if v.Version() >= 3 {
		v.Uint16(&m.B)
	}
}

func (m *hot) Serde(v *serde.Visitor) {
	v.Uint64(&m.ID)
	v.Uint32(&m.Flags)
	v.Int16(&m.Neg)
	v.Float64(&m.Score)
	v.Bool(&m.OK)
	v.Struct(&m.Ver)
	v.Bytes(&m.Data)
	serde.Slice(v, &m.Ints, (*serde.Visitor).Int32)
	serde.Slice(v, &m.Pts, func(v *serde.Visitor, e *point) { v.Struct(e) })
	serde.Optional(v, &m.Opt, func(v *serde.Visitor, e *point) { v.Struct(e) })
	v.Uint8(&m.K)
	v.Then(m) // a Continuation held by pointer does not allocate
}

func (m *hot) Continue(v *serde.Visitor) {
	if m.K == 1 {
		v.Uint32(&m.Alt)
	}
}

func newHot(dataLen int) *hot {
	m := &hot{ID: 1 << 40, Flags: 7, Neg: -3, Score: 2.5, OK: true, Ver: hotVer{1, 2},
		Data: make([]byte, dataLen), Ints: []int32{1, -1, 1 << 20}, Pts: []point{{1, 2}, {-3, 4}},
		Opt: &point{5, 6}, K: 1, Alt: 99}
	for i := range m.Data {
		m.Data[i] = byte(i)
	}
	return m
}

func TestZeroAllocEncode(t *testing.T) {
	m := newHot(1024)
	e := serde.NewEncoder(nil, serde.Limits{})
	buf := make([]byte, 100)
	allocs := testing.AllocsPerRun(100, func() {
		e.Reset(m)
		for {
			_, done, err := e.Encode(buf)
			if err != nil {
				panic(err)
			}
			if done {
				break
			}
		}
	})
	require.Zero(t, allocs)
}

func TestZeroAllocDecode(t *testing.T) {
	m := newHot(1024)
	e := serde.NewEncoder(nil, serde.Limits{})
	enc := encodeAll(t, e, m, 4096)
	d := serde.NewDecoder(nil, serde.Limits{})
	got := newHot(1024)
	got.Opt = &point{}
	allocs := testing.AllocsPerRun(100, func() {
		d.Reset(got)
		for off := 0; ; {
			n, done, err := d.Decode(enc[off:min(off+100, len(enc))])
			if err != nil {
				panic(err)
			}
			off += n
			if done {
				break
			}
		}
	})
	require.Zero(t, allocs)
	require.Equal(t, m, got)
}

// BenchmarkEncode1K encodes a message with a 1 KiB []byte field into 4 KiB
// buffers.
func BenchmarkEncode1K(b *testing.B) {
	m := newHot(1024)
	e := serde.NewEncoder(nil, serde.Limits{})
	buf := make([]byte, 4096)
	e.Reset(m)
	n, _, _ := e.Encode(buf)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		e.Reset(m)
		if _, done, err := e.Encode(buf); err != nil || !done {
			b.Fatal(err, done)
		}
	}
}

// BenchmarkDecode1K decodes the same message from a 4 KiB buffer into a
// reused value.
func BenchmarkDecode1K(b *testing.B) {
	m := newHot(1024)
	e := serde.NewEncoder(nil, serde.Limits{})
	enc := encodeAll(b, e, m, 4096)
	d := serde.NewDecoder(nil, serde.Limits{})
	got := newHot(1024)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		d.Reset(got)
		if _, done, err := d.Decode(enc); err != nil || !done {
			b.Fatal(err, done)
		}
	}
}

// BenchmarkRich encodes and decodes the rich test message (strings, maps,
// Any) through 4 KiB buffers.
func BenchmarkRichRoundTrip(b *testing.B) {
	reg := testRegistry()
	m := newGen(3).rich()
	e := serde.NewEncoder(reg, serde.Limits{})
	d := serde.NewDecoder(reg, serde.Limits{})
	buf := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		e.Reset(m)
		d.Reset(new(rich))
		for {
			n, done, err := e.Encode(buf)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := d.Decode(buf[:n]); err != nil {
				b.Fatal(err)
			}
			if done {
				break
			}
		}
	}
}
