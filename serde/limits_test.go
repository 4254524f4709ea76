package serde_test

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/serde"
)

type strMsg struct{ S string }

func (m *strMsg) Serde(v *serde.Visitor) { v.String(&m.S) }

type bytesMsg struct{ B []byte }

func (m *bytesMsg) Serde(v *serde.Visitor) { v.Bytes(&m.B) }

type sliceMsg struct{ L []int64 }

func (m *sliceMsg) Serde(v *serde.Visitor) { serde.Slice(v, &m.L, (*serde.Visitor).Int64) }

type mapMsg struct{ M map[uint32]uint32 }

func (m *mapMsg) Serde(v *serde.Visitor) {
	serde.Map(v, &m.M, (*serde.Visitor).Uint32, (*serde.Visitor).Uint32)
}

type structSliceMsg struct{ L []inner }

func (m *structSliceMsg) Serde(v *serde.Visitor) {
	serde.Slice(v, &m.L, func(v *serde.Visitor, e *inner) { v.Struct(e) })
}

// decodeErr feeds data a byte at a time and returns the first error.
func decodeErr(t *testing.T, lim serde.Limits, root serde.Type, data []byte) error {
	t.Helper()
	d := serde.NewDecoder(testRegistry(), lim)
	d.Reset(root)
	for i := range data {
		if _, done, err := d.Decode(data[i : i+1]); err != nil {
			// Sticky until Reset.
			_, _, err2 := d.Decode(data[i:])
			require.Equal(t, err, err2)
			return err
		} else if done {
			return nil
		}
	}
	return nil
}

func TestDecodeLimits(t *testing.T) {
	lim := serde.Limits{MaxString: 10, MaxContainer: 3, MaxStream: 5}
	hdr := func(n uint64) []byte { return serde.AppendCross(nil, n) }
	for _, tc := range []struct {
		name string
		root serde.Type
		data []byte
	}{
		{"string", &strMsg{}, hdr(11)},
		{"bytes", &bytesMsg{}, hdr(1 << 62)},
		{"slice", &sliceMsg{}, hdr(4)},
		{"map", &mapMsg{}, hdr(1 << 40)},
		{"stream", &streamMsg{}, []byte{0, 3, 0, 1, 2, 3, 3, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := decodeErr(t, lim, tc.root, tc.data)
			require.ErrorIs(t, err, serde.ErrLimit)
			require.Contains(t, err.Error(), "decoding")
		})
	}
	// At the limit is fine.
	require.NoError(t, decodeErr(t, lim, &strMsg{}, append(hdr(10), "0123456789"...)))
	require.NoError(t, decodeErr(t, lim, &streamMsg{}, []byte{0, 3, 0, 1, 2, 3, 2, 0, 4, 5, 0, 0, 0}))
}

func TestEncodeLimits(t *testing.T) {
	lim := serde.Limits{MaxString: 10, MaxContainer: 3, MaxStream: 5}
	e := serde.NewEncoder(nil, lim)
	buf := make([]byte, 100)
	for _, root := range []serde.Type{
		&strMsg{S: strings.Repeat("x", 11)},
		&bytesMsg{B: make([]byte, 11)},
		&sliceMsg{L: make([]int64, 4)},
		&mapMsg{M: map[uint32]uint32{1: 1, 2: 2, 3: 3, 4: 4}},
		&streamMsg{src: &patternSource{left: 6}},
	} {
		e.Reset(root)
		var err error
		for range 10 {
			if _, _, err = e.Encode(buf); err != nil {
				break
			}
		}
		require.ErrorIs(t, err, serde.ErrLimit, "%T", root)
		_, _, err2 := e.Encode(buf)
		require.Equal(t, err, err2, "error is sticky")
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		root serde.Type
		data []byte
		want error
	}{
		{"int8 too wide", &ints{}, []byte{2, 1, 1}, serde.ErrIntOverflow},
		{"int32 too wide", &ints{}, []byte{0, 0, 5}, serde.ErrIntOverflow},
		{"uint64 length 9", &ints{}, []byte{0, 0, 0, 0, 0, 0, 0, 0, 9}, serde.ErrIntOverflow},
		{"bad cross check", &strMsg{}, []byte{0x08}, serde.ErrBadCross},
		{"cross too long", &strMsg{}, []byte{0x49}, serde.ErrBadCross},
		{"bad bool", &sample{}, []byte{0x09, 0x02, 0x02}, serde.ErrBadValue},
		{"bad optional", &optMsg{}, []byte{0x05}, serde.ErrBadValue},
		{"unknown any", &anyMsg{}, []byte{0x09, 0x63}, serde.ErrUnknownType},
		{"bad version cross", &userV1{}, []byte{0x0a}, serde.ErrBadCross},
		{"bad any in slice", &rich{}, nil, nil},
	} {
		if tc.want == nil {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			err := decodeErr(t, serde.Limits{}, tc.root, tc.data)
			require.ErrorIs(t, err, tc.want)
			require.True(t, strings.HasPrefix(err.Error(), "serde: decoding "), err.Error())
		})
	}
}

type optMsg struct{ P *uint8 }

func (m *optMsg) Serde(v *serde.Visitor) { serde.Optional(v, &m.P, (*serde.Visitor).Uint8) }

type anyMsg struct{ A serde.Type }

func (m *anyMsg) Serde(v *serde.Visitor) { v.Any(&m.A) }

func TestAnyErrors(t *testing.T) {
	// Unregistered type when encoding.
	e := serde.NewEncoder(testRegistry(), serde.Limits{})
	e.Reset(&anyMsg{A: &ints{}})
	_, _, err := e.Encode(make([]byte, 10))
	require.ErrorIs(t, err, serde.ErrUnknownType)
	// Nil registry.
	e = serde.NewEncoder(nil, serde.Limits{})
	e.Reset(&anyMsg{A: &point{}})
	_, _, err = e.Encode(make([]byte, 10))
	require.ErrorIs(t, err, serde.ErrUnknownType)
	// Nil registry, nil value is fine.
	e.Reset(&anyMsg{})
	n, done, err := e.Encode(make([]byte, 10))
	require.NoError(t, err)
	require.True(t, done)
	require.Equal(t, 1, n)
	d := serde.NewDecoder(nil, serde.Limits{})
	d.Reset(&anyMsg{A: &point{}})
	_, _, err = d.Decode([]byte{0x09, 0x01})
	require.ErrorIs(t, err, serde.ErrUnknownType)
}

func TestMisuse(t *testing.T) {
	e := serde.NewEncoder(nil, serde.Limits{})
	_, _, err := e.Encode(make([]byte, 4))
	require.Error(t, err, "Encode before Reset")
	e.Reset(nil)
	_, _, err = e.Encode(make([]byte, 4))
	require.Error(t, err)
	e.Reset(&nilStruct{})
	_, _, err = e.Encode(make([]byte, 4))
	require.Error(t, err)
	// Stream direction mismatch.
	e.Reset(&wrongStream{})
	_, _, err = e.Encode(make([]byte, 4))
	require.ErrorIs(t, err, serde.ErrBadValue)
	d := serde.NewDecoder(nil, serde.Limits{})
	d.Reset(&wrongStream{})
	_, _, err = d.Decode([]byte{0, 0})
	require.ErrorIs(t, err, serde.ErrBadValue)
	// Reset recovers.
	e.Reset(&point{})
	_, done, err := e.Encode(make([]byte, 4))
	require.NoError(t, err)
	require.True(t, done)
}

type nilStruct struct{}

func (*nilStruct) Serde(v *serde.Visitor) { v.Struct(nil) }

type wrongStream struct{}

func (*wrongStream) Serde(v *serde.Visitor) {
	if v.Decoding() {
		v.StreamOut(nil)
	} else {
		v.StreamIn(nil)
	}
}

// allocDuring returns the bytes allocated while f runs.
func allocDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestNoAllocationAhead declares huge sizes within raised limits and feeds
// only a few bytes: the decoder must not allocate for the declared size.
func TestNoAllocationAhead(t *testing.T) {
	lim := serde.Limits{MaxString: 1 << 40, MaxContainer: 1 << 40}
	payload := make([]byte, 100)
	for _, tc := range []struct {
		name string
		root func() serde.Type
		data []byte
	}{
		{"string", func() serde.Type { return &strMsg{} }, append(serde.AppendCross(nil, 4<<30), payload...)},
		{"bytes", func() serde.Type { return &bytesMsg{} }, append(serde.AppendCross(nil, 4<<30), payload...)},
		{"slice", func() serde.Type { return &sliceMsg{} }, append(serde.AppendCross(nil, 1<<32), payload...)},
		{"struct slice", func() serde.Type { return &structSliceMsg{} }, append(serde.AppendCross(nil, 1<<32), payload...)},
		{"map", func() serde.Type { return &mapMsg{} }, append(serde.AppendCross(nil, 1<<32), payload...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := serde.NewDecoder(nil, lim)
			got := allocDuring(func() {
				for range 10 {
					d.Reset(tc.root())
					for i := 0; i < len(tc.data); i += 7 {
						_, done, err := d.Decode(tc.data[i:min(i+7, len(tc.data))])
						require.NoError(t, err)
						require.False(t, done)
					}
				}
			})
			require.Less(t, got, uint64(1<<20), "allocated %d bytes", got)
		})
	}
}

func TestErrorsWrapSentinels(t *testing.T) {
	err := decodeErr(t, serde.Limits{}, &ints{}, []byte{2, 1, 1})
	require.True(t, errors.Is(err, serde.ErrIntOverflow))
	require.Contains(t, err.Error(), "int8")
}
