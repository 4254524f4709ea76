package serde_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/serde"
)

// userV1 and userV2 are two releases of the same message: v2 adds Email and
// a nested versioned field.
type userV1 struct {
	Name string
	Age  uint8
}

func (m *userV1) SerdeVersion() uint32 { return 1 }

func (m *userV1) Serde(v *serde.Visitor) {
	v.String(&m.Name)
	v.Uint8(&m.Age)
}

type userV2 struct {
	Name  string
	Age   uint8
	Email string
	Seen  uint32 // version the decoder saw
}

func (m *userV2) SerdeVersion() uint32 { return 2 }

func (m *userV2) Serde(v *serde.Visitor) {
	if v.Decoding() {
		m.Seen = v.Version()
	}
	v.String(&m.Name)
	v.Uint8(&m.Age)
	if v.Version() >= 2 {
		v.String(&m.Email)
	}
	// Continuations see the version of the struct that queued them.
	v.Then(serde.ContinueFunc(func(v *serde.Visitor) {
		if v.Version() >= 2 && m.Email == "" {
			m.Email = "-"
		}
	}))
}

type envelope struct {
	Before uint16
	User   serde.Type
	After  uint16
}

func (m *envelope) Serde(v *serde.Visitor) {
	v.Uint16(&m.Before)
	v.Struct(m.User)
	v.Uint16(&m.After)
}

func TestVersionedOldEncoderNewDecoder(t *testing.T) {
	e := serde.NewEncoder(nil, serde.Limits{})
	d := serde.NewDecoder(nil, serde.Limits{})
	old := &userV1{Name: "ann", Age: 41}
	enc := encodeAll(t, e, old, 3)
	require.Equal(t, []byte{0x09, 0x01, 0x09, 0x03, 'a', 'n', 'n', 0x01, 41}, enc)
	for size := 1; size <= len(enc); size++ {
		got := &userV2{}
		decodeSplit(t, d, got, enc, func() int { return size })
		require.Equal(t, &userV2{Name: "ann", Age: 41, Seen: 1}, got)
	}

	// Nested: the version comes first in the nested struct's place, and the
	// parent's fields after it are unaffected.
	enc = encodeAll(t, e, &envelope{Before: 7, User: old, After: 9}, 2)
	got := &envelope{User: &userV2{}}
	decodeSplit(t, d, got, enc, func() int { return 1 })
	require.Equal(t, &envelope{Before: 7, User: &userV2{Name: "ann", Age: 41, Seen: 1}, After: 9}, got)

	// v2 to v2 carries Email; the continuation sees version 2.
	enc = encodeAll(t, e, &userV2{Name: "bo", Age: 3}, 5)
	got2 := &userV2{}
	decodeSplit(t, d, got2, enc, func() int { return 1 })
	require.Equal(t, &userV2{Name: "bo", Age: 3, Email: "-", Seen: 2}, got2)
}

func TestVersionedNewEncoderOldDecoderFailsLoudly(t *testing.T) {
	// A v2 encoding read by a v1 type leaves bytes over: the decoder reports
	// done before the end, and the caller sees n < len.
	e := serde.NewEncoder(nil, serde.Limits{})
	enc := encodeAll(t, e, &userV2{Name: "x", Email: "y"}, 64)
	d := serde.NewDecoder(nil, serde.Limits{})
	got := &userV1{}
	d.Reset(got)
	n, done, err := d.Decode(enc)
	require.NoError(t, err)
	require.True(t, done)
	require.Less(t, n, len(enc))
	require.Equal(t, "x", got.Name)
}

func TestVersionTooLarge(t *testing.T) {
	d := serde.NewDecoder(nil, serde.Limits{})
	d.Reset(&userV1{})
	data := serde.AppendCross(nil, 1<<32)
	_, _, err := d.Decode(data)
	require.ErrorIs(t, err, serde.ErrBadValue)
}

// TestThenOrder checks that a continuation runs after everything queued
// before it, nested structs and containers included, and before what follows.
func TestThenOrder(t *testing.T) {
	m := &ordered{A: 1, In: inner{A: 2, C: []uint16{3}}, B: 4}
	e := serde.NewEncoder(nil, serde.Limits{})
	d := serde.NewDecoder(nil, serde.Limits{})
	enc := encodeAll(t, e, m, 1)
	require.Equal(t, []string{"then A=1 In.C=[3]", "then2 B=4"}, m.log)
	got := &ordered{}
	decodeSplit(t, d, got, enc, func() int { return 1 })
	require.Equal(t, []string{"then A=1 In.C=[3]", "then2 B=4"}, got.log)
	require.Equal(t, m.Extra, got.Extra)
}

type ordered struct {
	A     uint8
	In    inner
	B     uint8
	Extra []uint8
	log   []string
}

func (m *ordered) Serde(v *serde.Visitor) {
	v.Uint8(&m.A)
	v.Struct(&m.In)
	v.Then(serde.ContinueFunc(func(v *serde.Visitor) {
		m.log = append(m.log, "then A="+itoa(int(m.A))+" In.C=["+itoa(int(m.In.C[0]))+"]")
		v.Uint8(&m.B)
		v.Then(serde.ContinueFunc(func(v *serde.Visitor) {
			m.log = append(m.log, "then2 B="+itoa(int(m.B)))
			if !v.Decoding() {
				m.Extra = []uint8{m.B, m.A}
			}
			serde.Slice(v, &m.Extra, (*serde.Visitor).Uint8)
		}))
	}))
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + itoa(i%10)
}
