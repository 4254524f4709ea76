package buffers

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAllocAhead: the array is allocated on another goroutine, ready once
// Done is closed, empty with the asked capacity, and taken once.
func TestAllocAhead(t *testing.T) {
	for _, n := range []int{4 << 10, PrefaultMin + 4<<10} {
		a := AllocAhead(n)
		select {
		case <-a.Done():
		case <-time.After(time.Minute):
			t.Fatal("the array was not allocated")
		}
		require.True(t, a.Ready())
		b := a.Take()
		require.Zero(t, len(b))
		require.Equal(t, n, cap(b))
		b = append(b, make([]byte, n)...) // all of it writable
		require.Len(t, b, n)
		require.Nil(t, a.Take(), "taken once")
	}
}
