package hol

import (
	"encoding/binary"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// readAll reads all of r in reads of the given sizes, cycling through them.
func readAll(t *testing.T, r io.Reader, sizes ...int) []byte {
	t.Helper()
	var out []byte
	for i := 0; ; i++ {
		p := make([]byte, sizes[i%len(sizes)])
		n, err := r.Read(p)
		out = append(out, p[:n]...)
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
	}
}

// TestPatternDefinition checks the generator against its definition: the
// word at offset off+i of a Read at offset off is (off+i)·patternStep, and
// a Read's last len%8 bytes are the low bytes of their offsets.
func TestPatternDefinition(t *testing.T) {
	for _, sizes := range [][]int{{1 << 16}, {1000, 7, 33, 4096}, {3}} {
		r := NewPatternReader(200_003)
		var off int64
		for i := 0; ; i++ {
			p := make([]byte, sizes[i%len(sizes)])
			n, err := r.Read(p)
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			for j := 0; j+8 <= n; j += 8 {
				require.Equal(t, uint64(off+int64(j))*patternStep, binary.LittleEndian.Uint64(p[j:]), "word at %d", off+int64(j))
			}
			for j := n &^ 7; j < n; j++ {
				require.Equal(t, byte(off+int64(j)), p[j], "byte at %d", off+int64(j))
			}
			off += int64(n)
		}
		require.Equal(t, int64(200_003), off)
	}
}

// TestHashDetectsFlippedByte: the receiver's running hash equals the
// sender's for the bytes as generated, whatever the chunking on either
// side, and differs when one byte anywhere was changed, when a chunk was
// dropped or repeated, or when two chunks were swapped: the stream
// workload's check is real.
func TestHashDetectsFlippedByte(t *testing.T) {
	const n = 1 << 20
	src := NewPatternReader(n)
	data := readAll(t, src, 65536, 1000, 17)
	require.Len(t, data, n)

	sum := func(b []byte, chunk int) []byte {
		s := NewHashSink()
		for len(b) > 0 {
			k := min(chunk, len(b))
			_, _ = s.Write(b[:k])
			b = b[k:]
		}
		return s.Sum()
	}
	require.Equal(t, src.Sum(), sum(data, 4096))
	require.Equal(t, src.Sum(), sum(data, 65536+3))

	for _, at := range []int{0, 1, 7, 8, 4095, 65536, n/2 + 5, n - 1} {
		for bit := range 8 {
			bad := append([]byte(nil), data...)
			bad[at] ^= 1 << bit
			require.NotEqual(t, src.Sum(), sum(bad, 4096), "bit %d of byte %d flipped", bit, at)
		}
	}
	const c = 4096
	dropped := append(append([]byte(nil), data[:c]...), data[2*c:]...)
	require.NotEqual(t, src.Sum(), sum(dropped, c), "a chunk dropped")
	repeated := append(append([]byte(nil), data[:2*c]...), data[c:]...)
	require.NotEqual(t, src.Sum(), sum(repeated, c), "a chunk repeated")
	swapped := append([]byte(nil), data...)
	copy(swapped[:c], data[c:2*c])
	copy(swapped[c:2*c], data[:c])
	require.NotEqual(t, src.Sum(), sum(swapped, c), "two chunks swapped")
}

// BenchmarkPatternReader is the sender's per-byte work in the stream
// workload: generate and hash.
func BenchmarkPatternReader(b *testing.B) {
	p := make([]byte, 64<<10)
	r := NewPatternReader(1 << 62)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		_, _ = r.Read(p)
	}
}

// BenchmarkHashSink is the receiver's per-byte work in the stream workload.
func BenchmarkHashSink(b *testing.B) {
	p := make([]byte, 64<<10)
	s := NewHashSink()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		_, _ = s.Write(p)
	}
}
