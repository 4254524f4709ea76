package compress

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSnappyThresholdExclusive: SolidFrame compresses only payloads larger
// than 1024 bytes.
func TestSnappyThresholdExclusive(t *testing.T) {
	dst := make([]byte, 64<<10)
	_, ok := Snappy{}.Compress(dst, make([]byte, 1024))
	require.False(t, ok, "1024 bytes travel raw")
	_, ok = Snappy{}.Compress(dst, make([]byte, 1025))
	require.True(t, ok, "1025 bytes are compressed")
	require.Equal(t, 1024, Snappy{}.RawLimit())
	require.Equal(t, 64, Snappy{Threshold: 64}.RawLimit())
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// TestAdaptiveBacksOffAndProbes: incompressible packets make the connection
// stop trying (4 misses, then 8, 16, ... up to Max skipped between
// probes); a compressible packet found by a probe resets the policy.
func TestAdaptiveBacksOffAndProbes(t *testing.T) {
	a := NewAdaptive(Snappy{}, Backoff{Misses: 4, Min: 8, Max: 32})
	dst := make([]byte, 128<<10)
	random := randomBytes(4096)
	var tried []int
	for i := range 200 {
		before := a.Stats.Missed
		_, ok := a.Compress(dst, random)
		require.False(t, ok)
		if a.Stats.Missed > before {
			tried = append(tried, i)
		}
	}
	// Tries: 0-3, then probes after skipping 8, 16, 32, 32, ...
	require.Equal(t, []int{0, 1, 2, 3, 12, 29, 62, 95, 128, 161, 194}, tried)
	require.Equal(t, uint64(200), a.Stats.Missed+a.Stats.Skipped)

	json := bytes.Repeat([]byte(`{"id":12,"name":"alpha","tags":["x","y"]},`), 100)
	compressed := 0
	for range 40 {
		if _, ok := a.Compress(dst, json); ok {
			compressed++
		}
	}
	// At most Max packets go raw before the next probe finds the data
	// compressible; from then on every packet is compressed.
	require.GreaterOrEqual(t, compressed, 40-32)
	_, ok := a.Compress(dst, json)
	require.True(t, ok)
}

// TestAdaptiveSmallAndDisabled: short payloads never count as misses, and
// a negative Misses tries every packet.
func TestAdaptiveSmallAndDisabled(t *testing.T) {
	dst := make([]byte, 128<<10)
	a := NewAdaptive(Snappy{}, Backoff{})
	for range 100 {
		_, ok := a.Compress(dst, make([]byte, 1024))
		require.False(t, ok)
	}
	require.Equal(t, uint64(100), a.Stats.Small)
	_, ok := a.Compress(dst, make([]byte, 4096))
	require.True(t, ok, "small packets did not trigger the back-off")

	always := NewAdaptive(Snappy{}, Backoff{Misses: -1})
	random := randomBytes(4096)
	for range 50 {
		always.Compress(dst, random)
	}
	require.Equal(t, uint64(50), always.Stats.Missed)

	var none Adaptive
	_, ok = none.Compress(dst, random)
	require.False(t, ok)
	require.False(t, none.Enabled())
}
