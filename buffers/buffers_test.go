package buffers

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPoolSizesAndOutstanding(t *testing.T) {
	for _, size := range []int{0, MinSize, 1000, DefaultSize, MaxSize} {
		p := NewPool(size)
		want := size
		if want == 0 {
			want = DefaultSize
		}
		require.Equal(t, want, p.Size())
		a, b := p.Get(), p.Get()
		require.Len(t, *a, want)
		require.EqualValues(t, 2, p.Outstanding())
		p.Put(a)
		p.Put(b)
		require.EqualValues(t, 0, p.Outstanding())
	}
}

func TestCheckSize(t *testing.T) {
	require.Error(t, CheckSize(MinSize-1))
	require.Error(t, CheckSize(MaxSize+1))
	require.NoError(t, CheckSize(MaxSize))
	require.Panics(t, func() { NewPool(MaxSize + 1) })
}

func TestPutForeignPanics(t *testing.T) {
	p := NewPool(1024)
	b := make([]byte, 10)
	require.Panics(t, func() { p.Put(&b) })
}

func TestGetPutNoAlloc(t *testing.T) {
	p := NewPool(DefaultSize)
	p.Put(p.Get())
	allocs := testing.AllocsPerRun(1000, func() { p.Put(p.Get()) })
	require.Zero(t, allocs)
}
