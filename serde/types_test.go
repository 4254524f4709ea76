package serde_test

import (
	"math"
	"math/rand/v2"

	"github.com/ipcframe/ipcframe/serde"
)

// inner is a plain nested struct.
type inner struct {
	A int32
	B string
	C []uint16
}

func (m *inner) Serde(v *serde.Visitor) {
	v.Int32(&m.A)
	v.String(&m.B)
	serde.Slice(v, &m.C, (*serde.Visitor).Uint16)
}

// verInner is a versioned struct: Extra only exists from version 2.
type verInner struct {
	X     uint64
	Extra string
}

func (m *verInner) SerdeVersion() uint32 { return 2 }

func (m *verInner) Serde(v *serde.Visitor) {
	v.Uint64(&m.X)
	if v.Version() >= 2 {
		v.String(&m.Extra)
	}
}

// point is a small registered polymorphic type.
type point struct{ X, Y int16 }

func (m *point) Serde(v *serde.Visitor) {
	v.Int16(&m.X)
	v.Int16(&m.Y)
}

// branch is decoded through a continuation: Kind selects the payload.
type branch struct {
	Kind uint8
	S    string
	U    uint64
	Pts  []point
}

func (m *branch) Serde(v *serde.Visitor) {
	v.Uint8(&m.Kind)
	v.Then(m)
}

// Continue implements serde.Continuation on a pointer we already hold, so
// queuing it does not allocate.
func (m *branch) Continue(v *serde.Visitor) {
	switch m.Kind % 3 {
	case 0:
		v.String(&m.S)
	case 1:
		v.Uint64(&m.U)
	case 2:
		serde.Slice(v, &m.Pts, func(v *serde.Visitor, p *point) { v.Struct(p) })
	}
}

// rich has one field of every kind.
type rich struct {
	Bool bool
	I8   int8
	I16  int16
	I32  int32
	I64  int64
	I    int
	U8   uint8
	U16  uint16
	U32  uint32
	U64  uint64
	U    uint
	F32  float32
	F64  float64
	Fx8  uint8
	Fx16 uint16
	Cr   uint64
	S    string
	B    []byte

	Ints   []int64
	Strs   []string
	Items  []inner
	Nested [][]uint8
	M      map[string]int32
	MS     map[uint16]point

	In     inner
	Ver    verInner
	Opt    *inner
	OptI   *int64
	Poly   serde.Type
	PolyN  serde.Type
	Polys  []serde.Type
	Branch branch
	Tail   bool
}

func (m *rich) Serde(v *serde.Visitor) {
	v.Bool(&m.Bool)
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
	v.Float32(&m.F32)
	v.Float64(&m.F64)
	v.Fixed8(&m.Fx8)
	v.Fixed16(&m.Fx16)
	v.Cross(&m.Cr)
	v.String(&m.S)
	v.Bytes(&m.B)
	serde.Slice(v, &m.Ints, (*serde.Visitor).Int64)
	serde.Slice(v, &m.Strs, (*serde.Visitor).String)
	serde.Slice(v, &m.Items, func(v *serde.Visitor, e *inner) { v.Struct(e) })
	serde.Slice(v, &m.Nested, func(v *serde.Visitor, e *[]uint8) { serde.Slice(v, e, (*serde.Visitor).Uint8) })
	serde.Map(v, &m.M, (*serde.Visitor).String, (*serde.Visitor).Int32)
	serde.Map(v, &m.MS, (*serde.Visitor).Uint16, func(v *serde.Visitor, e *point) { v.Struct(e) })
	v.Struct(&m.In)
	v.Struct(&m.Ver)
	serde.Optional(v, &m.Opt, func(v *serde.Visitor, e *inner) { v.Struct(e) })
	serde.Optional(v, &m.OptI, (*serde.Visitor).Int64)
	v.Any(&m.Poly)
	v.Any(&m.PolyN)
	serde.Slice(v, &m.Polys, (*serde.Visitor).Any)
	v.Struct(&m.Branch)
	v.Bool(&m.Tail)
}

// Registry ids used by the tests.
const (
	idPoint    = 1
	idInner    = 2
	idVerInner = 300
	idRich     = 1 << 40
)

func testRegistry() *serde.Registry {
	r := serde.NewRegistry()
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(r.Register(idPoint, func() serde.Type { return new(point) }))
	must(r.Register(idInner, func() serde.Type { return new(inner) }))
	must(r.Register(idVerInner, func() serde.Type { return new(verInner) }))
	must(r.Register(idRich, func() serde.Type { return new(rich) }))
	return r
}

// gen produces random values. Empty slices and maps are nil, as they decode.
type gen struct{ r *rand.Rand }

func newGen(seed uint64) *gen { return &gen{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

// u64 returns values spread over every encoded length.
func (g *gen) u64() uint64 {
	switch g.r.IntN(4) {
	case 0:
		return 0
	case 1:
		return uint64(g.r.IntN(256))
	case 2:
		return math.MaxUint64
	}
	return g.r.Uint64() >> g.r.IntN(64)
}

func (g *gen) str() string {
	n := g.r.IntN(4)
	if n == 3 {
		n = g.r.IntN(300)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	return string(b)
}

func (g *gen) bytes() []byte {
	s := g.str()
	if s == "" {
		return nil
	}
	return []byte(s)
}

func (g *gen) n(max int) int { return g.r.IntN(max + 1) }

func (g *gen) inner() inner {
	m := inner{A: int32(g.u64()), B: g.str()}
	for range g.n(5) {
		m.C = append(m.C, uint16(g.u64()))
	}
	return m
}

func (g *gen) point() point { return point{int16(g.u64()), int16(g.u64())} }

func (g *gen) poly() serde.Type {
	switch g.r.IntN(4) {
	case 0:
		return nil
	case 1:
		p := g.point()
		return &p
	case 2:
		m := g.inner()
		return &m
	}
	return &verInner{X: g.u64(), Extra: g.str()}
}

func (g *gen) rich() *rich {
	m := &rich{
		Bool: g.r.IntN(2) == 1,
		I8:   int8(g.u64()), I16: int16(g.u64()), I32: int32(g.u64()), I64: int64(g.u64()), I: int(g.u64()),
		U8: uint8(g.u64()), U16: uint16(g.u64()), U32: uint32(g.u64()), U64: g.u64(), U: uint(g.u64()),
		F32: math.Float32frombits(uint32(g.u64())), F64: math.Float64frombits(g.u64()),
		Fx8: uint8(g.u64()), Fx16: uint16(g.u64()), Cr: g.u64(),
		S: g.str(), B: g.bytes(),
		In:   g.inner(),
		Ver:  verInner{X: g.u64(), Extra: g.str()},
		Poly: g.poly(),
		Tail: g.r.IntN(2) == 1,
	}
	for range g.n(6) {
		m.Ints = append(m.Ints, int64(g.u64()))
	}
	for range g.n(3) {
		m.Strs = append(m.Strs, g.str())
	}
	for range g.n(3) {
		m.Items = append(m.Items, g.inner())
	}
	for range g.n(3) {
		var s []uint8
		for range g.n(3) {
			s = append(s, uint8(g.u64()))
		}
		m.Nested = append(m.Nested, s)
	}
	for range g.n(3) {
		if m.M == nil {
			m.M = map[string]int32{}
		}
		m.M[g.str()] = int32(g.u64())
	}
	for range g.n(2) {
		if m.MS == nil {
			m.MS = map[uint16]point{}
		}
		m.MS[uint16(g.u64())] = g.point()
	}
	if g.r.IntN(2) == 1 {
		in := g.inner()
		m.Opt = &in
	}
	if g.r.IntN(2) == 1 {
		x := int64(g.u64())
		m.OptI = &x
	}
	for range g.n(3) {
		m.Polys = append(m.Polys, g.poly())
	}
	m.Branch.Kind = uint8(g.u64())
	switch m.Branch.Kind % 3 {
	case 0:
		m.Branch.S = g.str()
	case 1:
		m.Branch.U = g.u64()
	case 2:
		for range g.n(3) {
			m.Branch.Pts = append(m.Branch.Pts, g.point())
		}
	}
	return m
}
