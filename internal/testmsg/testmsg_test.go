package testmsg

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPayloadPattern(t *testing.T) {
	for _, idx := range []int{0, 1, 10, 11, 37} {
		for _, n := range []int{1, 8, 88, 100, 1000, 100000} {
			b := Payload(idx, n)
			require.Len(t, b, Size(n))
			require.NoError(t, Check(idx, n, b))
			// word k is pattern word (k+idx) mod 11
			for k := 0; k < len(b)/8; k++ {
				w := (k + idx) % words
				require.Equal(t, pattern[w*8:w*8+8], b[k*8:k*8+8])
			}
		}
	}
	b := Payload(3, 1000)
	b[500] ^= 1
	require.Error(t, Check(3, 1000, b))
	require.Error(t, Check(4, 1000, Payload(3, 1000)))
	require.Error(t, Check(3, 1008, Payload(3, 1000)))
}
