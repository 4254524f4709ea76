package reactor

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestYieldOnlyInterleaved: a loop gives up its P after a large write only
// on a connection marked interleaved (Stats.Yields counts it), never after
// small writes, and not at all once the mark is cleared.
func TestYieldOnlyInterleaved(t *testing.T) {
	r, c := discardConn(t)

	large, small := make([]byte, yieldBytes), make([]byte, yieldBytes-1)
	write := func(b []byte, times int) {
		t.Helper()
		var err error
		onLoop(t, c, func() {
			for i := 0; i < times && err == nil; i++ {
				err = c.Write(b)
			}
		})
		require.NoError(t, err)
	}
	write(large, 8)
	require.Zero(t, r.Stats().Yields, "a connection not interleaved")

	onLoop(t, c, func() { c.SetInterleaved(true) })
	write(small, 8)
	require.Zero(t, r.Stats().Yields, "writes below yieldBytes")
	write(large, 8)
	require.Equal(t, uint64(8), r.Stats().Yields, "large writes while interleaved")

	onLoop(t, c, func() { c.SetInterleaved(false) })
	write(large, 8)
	require.Equal(t, uint64(8), r.Stats().Yields, "after SetInterleaved(false)")
}
