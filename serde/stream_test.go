package serde_test

import (
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/serde"
)

// streamMsg carries a header, a stream and a trailer.
type streamMsg struct {
	ID   uint32
	src  serde.StreamSource
	dst  serde.StreamSink
	Tail string
}

func (m *streamMsg) Serde(v *serde.Visitor) {
	v.Uint32(&m.ID)
	if v.Decoding() {
		v.StreamIn(m.dst)
	} else {
		v.StreamOut(m.src)
	}
	v.String(&m.Tail)
}

// patternSource produces left pseudo-random bytes without allocating, at
// most max per Read (0 = unbounded).
type patternSource struct {
	rng  *rand.PCG
	left int
	max  int
	eof  bool // return io.EOF with the last bytes
}

func (s *patternSource) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	if s.rng == nil {
		s.rng = rand.NewPCG(1, 2)
	}
	n := min(len(p), s.left)
	if s.max > 0 {
		n = min(n, s.max)
	}
	for i := range n {
		p[i] = byte(s.rng.Uint64())
	}
	s.left -= n
	if s.left == 0 && s.eof {
		return n, io.EOF
	}
	return n, nil
}

// checkSink verifies the bytes against a patternSource's sequence.
type checkSink struct {
	rng    *rand.PCG
	n      int
	bad    bool
	closed int
}

func (s *checkSink) Write(p []byte) (int, error) {
	if s.rng == nil {
		s.rng = rand.NewPCG(1, 2)
	}
	for _, b := range p {
		if b != byte(s.rng.Uint64()) {
			s.bad = true
		}
	}
	s.n += len(p)
	return len(p), nil
}

func (s *checkSink) Close() error { s.closed++; return nil }

func TestStreamEveryBufferSize(t *testing.T) {
	e := serde.NewEncoder(nil, serde.Limits{})
	d := serde.NewDecoder(nil, serde.Limits{})
	for _, total := range []int{0, 1, 2, 3, 300, 70000} {
		for _, eof := range []bool{false, true} {
			for size := 1; size <= 70; size++ {
				if total == 70000 && size != 3 && size != 64 {
					continue
				}
				m := &streamMsg{ID: 77, src: &patternSource{left: total, max: 1 + size%5*100, eof: eof}, Tail: "end"}
				enc := encodeAll(t, e, m, size)
				sink := &checkSink{}
				got := &streamMsg{dst: sink}
				decodeSplit(t, d, got, enc, func() int { return size })
				require.Equal(t, total, sink.n)
				require.False(t, sink.bad)
				require.Equal(t, 1, sink.closed)
				require.Equal(t, uint32(77), got.ID)
				require.Equal(t, "end", got.Tail)
			}
		}
	}
	// A nil sink discards; a nil source is an empty stream.
	enc := encodeAll(t, e, &streamMsg{src: &patternSource{left: 1000}}, 64)
	got := &streamMsg{}
	decodeSplit(t, d, got, enc, func() int { return 10 })
	enc = encodeAll(t, e, &streamMsg{ID: 1}, 64)
	require.Equal(t, []byte{1, 1, 0, 0, 0}, enc)
}

// TestStreamLarge streams 10 MiB through 4 KiB buffers, decoding each buffer
// as it is produced, and checks memory stays flat.
func TestStreamLarge(t *testing.T) {
	const total = 10 << 20
	e := serde.NewEncoder(nil, serde.Limits{})
	d := serde.NewDecoder(nil, serde.Limits{})
	sink := &checkSink{}
	buf := make([]byte, 4096)
	var chunks int
	alloc := allocDuring(func() {
		e.Reset(&streamMsg{ID: 5, src: &patternSource{left: total}, Tail: "t"})
		d.Reset(&streamMsg{dst: sink})
		for {
			n, edone, err := e.Encode(buf)
			require.NoError(t, err)
			m, ddone, err := d.Decode(buf[:n])
			require.NoError(t, err)
			require.Equal(t, n, m)
			require.Equal(t, edone, ddone)
			chunks++
			if edone {
				break
			}
		}
	})
	require.Equal(t, total, sink.n)
	require.False(t, sink.bad)
	require.Equal(t, 1, sink.closed)
	require.Less(t, alloc, uint64(1<<20), "allocated %d bytes", alloc)
	require.Less(t, chunks, total/4000+10)
}

type errSource struct{ err error }

func (s errSource) Read([]byte) (int, error) { return 0, s.err }

type errSink struct{ werr, cerr error }

func (s errSink) Write(p []byte) (int, error) {
	if s.werr != nil {
		return 0, s.werr
	}
	return len(p) - 1, nil
}
func (s errSink) Close() error { return s.cerr }

func TestStreamErrors(t *testing.T) {
	boom := errors.New("boom")
	e := serde.NewEncoder(nil, serde.Limits{})
	e.Reset(&streamMsg{src: errSource{boom}})
	_, _, err := e.Encode(make([]byte, 100))
	require.ErrorIs(t, err, boom)
	e.Reset(&streamMsg{src: errSource{nil}})
	_, _, err = e.Encode(make([]byte, 100))
	require.ErrorIs(t, err, serde.ErrNoProgress)

	d := serde.NewDecoder(nil, serde.Limits{})
	d.Reset(&streamMsg{dst: errSink{werr: boom}})
	_, _, err = d.Decode([]byte{0, 2, 0, 1, 2})
	require.ErrorIs(t, err, boom)
	d.Reset(&streamMsg{dst: errSink{}})
	_, _, err = d.Decode([]byte{0, 2, 0, 1, 2})
	require.ErrorIs(t, err, io.ErrShortWrite)
	d.Reset(&streamMsg{dst: errSink{cerr: boom}})
	_, _, err = d.Decode([]byte{0, 0, 0})
	require.ErrorIs(t, err, boom)
}

// TestStreamHook checks Decoder.SetStreamHook: the hook sees the sink of
// each stream with bytes once, before the sink's first Write, whatever the
// buffer size (the chunk header may arrive split); an empty stream does not
// call it; the hook survives Reset.
func TestStreamHook(t *testing.T) {
	for _, size := range []int{1, 2, 3, 7, 4096} {
		for _, total := range []int{0, 1, 5000} {
			e := serde.NewEncoder(nil, serde.Limits{})
			d := serde.NewDecoder(nil, serde.Limits{})
			sink := &checkSink{}
			var seen []serde.StreamSink
			var writtenAtHook []int
			d.SetStreamHook(func(s serde.StreamSink) {
				seen = append(seen, s)
				writtenAtHook = append(writtenAtHook, sink.n)
			})
			for round := range 2 { // the hook survives Reset
				*sink = checkSink{}
				e.Reset(&streamMsg{ID: 5, src: &patternSource{left: total}, Tail: "t"})
				d.Reset(&streamMsg{dst: sink})
				buf := make([]byte, size)
				for done := false; !done; {
					n, edone, err := e.Encode(buf)
					require.NoError(t, err)
					_, _, err = d.Decode(buf[:n])
					require.NoError(t, err)
					done = edone
				}
				require.Equal(t, total, sink.n)
				if total == 0 {
					require.Empty(t, seen, "size %d: an empty stream", size)
					continue
				}
				require.Len(t, seen, round+1, "size %d total %d", size, total)
				require.Same(t, sink, seen[round])
				require.Zero(t, writtenAtHook[round], "the hook runs before the first Write")
			}
		}
	}
}

// notReadySource is a patternSource that has nothing ready every other
// Read (serde.ErrNotReady), with no bytes or, if withBytes, with some.
type notReadySource struct {
	patternSource
	calls     int
	withBytes bool
}

func (s *notReadySource) Read(p []byte) (int, error) {
	s.calls++
	if s.calls%2 == 1 && (!s.withBytes || s.left > 0) {
		if s.withBytes && len(p) > 0 {
			p[0] = byte(s.rng.Uint64())
			s.left--
			return 1, serde.ErrNotReady
		}
		return 0, serde.ErrNotReady
	}
	return s.patternSource.Read(p)
}

// TestStreamNotReady: a source that returns serde.ErrNotReady with no
// bytes stops Encode without an error (Waiting reports it, the bytes so
// far are returned, the encoder stays usable) and the next Encode carries
// on; with bytes, ErrNotReady is just progress. The stream decodes whole
// at every buffer size, and an error-free call never reports Waiting.
func TestStreamNotReady(t *testing.T) {
	for _, size := range []int{1, 2, 3, 7, 100, 4096} {
		for _, withBytes := range []bool{false, true} {
			const total = 3000
			src := &notReadySource{patternSource: patternSource{rng: rand.NewPCG(1, 2), left: total, max: 1000}, withBytes: withBytes}
			e := serde.NewEncoder(nil, serde.Limits{})
			d := serde.NewDecoder(nil, serde.Limits{})
			sink := &checkSink{}
			e.Reset(&streamMsg{ID: 7, src: src, Tail: "end"})
			got := &streamMsg{dst: sink}
			d.Reset(got)
			buf := make([]byte, size)
			waits := 0
			for done := false; !done; {
				n, edone, err := e.Encode(buf)
				require.NoError(t, err)
				if e.Waiting() != nil {
					require.False(t, edone)
					require.Same(t, src, e.Waiting())
					waits++
				} else if !edone {
					require.Equal(t, len(buf), n, "a call that does not wait fills the buffer")
				}
				_, _, err = d.Decode(buf[:n])
				require.NoError(t, err)
				done = edone
			}
			require.Nil(t, e.Waiting())
			require.Equal(t, total, sink.n)
			require.False(t, sink.bad)
			require.Equal(t, "end", got.Tail)
			if withBytes {
				require.Zero(t, waits, "bytes with ErrNotReady are progress")
			} else {
				require.Positive(t, waits)
			}
		}
	}
}

// lendSource is a patternSource that also lends: Lend hands out up to max
// (and at most lend, or more than asked when over is set) of its bytes
// from a buffer of its own, which must stay unchanged until Release.
type lendSource struct {
	patternSource
	lend, over int
	buf        []byte
	out        bool // bytes lent and not released
	releases   int
}

func (s *lendSource) Lend(max int) []byte {
	if s.left == 0 {
		return nil
	}
	n := min(max, s.lend, s.left)
	if s.over > 0 {
		n = max + s.over
	}
	if cap(s.buf) < n {
		s.buf = make([]byte, n)
	}
	k, _ := s.patternSource.Read(s.buf[:n])
	s.out = true
	return s.buf[:k:k]
}

func (s *lendSource) Release() { s.out = false; s.releases++ }

// TestStreamLend: pieces a source lends (Encoder.LendStream) go out as
// the 2-byte header LendStream writes followed by the lent bytes, mixed
// with pieces Encode reads into the buffer, and decode to the same stream
// as if all were read; a lend never takes the stream beyond MaxStream, and
// a source that lends more than asked fails the encoder with ErrBadValue.
func TestStreamLend(t *testing.T) {
	const total = 300_000
	src := &lendSource{patternSource: patternSource{left: total}, lend: 20_000}
	e := serde.NewEncoder(nil, serde.Limits{})
	e.Reset(&streamMsg{ID: 9, src: src, Tail: "end"})
	var wire []byte
	buf := make([]byte, 40_000)
	lends := 0
	for i := 0; ; i++ {
		if i%3 != 2 { // every third piece is read, the others lent
			if k, b, l := e.LendStream(buf); b != nil {
				require.Equal(t, 2, k)
				require.Same(t, src, l.(*lendSource))
				require.LessOrEqual(t, len(b), len(buf)-2)
				wire = append(append(wire, buf[:k]...), b...)
				l.Release()
				lends++
				continue
			}
		}
		n, done, err := e.Encode(buf[:min(len(buf), 9_000)])
		require.NoError(t, err)
		wire = append(wire, buf[:n]...)
		if done {
			break
		}
	}
	require.Greater(t, lends, 5)
	require.Equal(t, lends, src.releases)
	sink := &checkSink{}
	got := &streamMsg{dst: sink}
	decodeSplit(t, serde.NewDecoder(nil, serde.Limits{}), got, wire, func() int { return 4096 })
	require.Equal(t, total, sink.n)
	require.False(t, sink.bad)
	require.Equal(t, "end", got.Tail)

	// MaxStream: the lend stops at the limit; the next Read fails it.
	lim := &lendSource{patternSource: patternSource{left: total}, lend: 1 << 20}
	e = serde.NewEncoder(nil, serde.Limits{MaxStream: 1000})
	e.Reset(&streamMsg{src: lim})
	_, _, _ = e.Encode(buf[:1]) // the ID
	k, b, _ := e.LendStream(buf)
	require.Equal(t, 2, k)
	require.Len(t, b, 1000)
	_, _, err := e.Encode(buf)
	require.ErrorIs(t, err, serde.ErrLimit)

	// A source that lends more than asked fails the encoder.
	e = serde.NewEncoder(nil, serde.Limits{})
	e.Reset(&streamMsg{src: &lendSource{patternSource: patternSource{left: total}, over: 1}})
	_, _, _ = e.Encode(buf[:1])
	_, b, _ = e.LendStream(buf[:100])
	require.Nil(t, b)
	_, _, err = e.Encode(buf)
	require.ErrorIs(t, err, serde.ErrBadValue)

	// Nothing to lend: not a stream, or a source that cannot lend.
	e.Reset(&streamMsg{src: &patternSource{left: 10}})
	_, b, _ = e.LendStream(buf)
	require.Nil(t, b, "the ID comes first")
	_, _, _ = e.Encode(buf[:1])
	_, b, _ = e.LendStream(buf)
	require.Nil(t, b, "a plain source")
}
