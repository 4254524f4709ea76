package serde_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/serde"
)

func TestRegistry(t *testing.T) {
	r := serde.NewRegistry()
	require.Error(t, r.Register(0, func() serde.Type { return new(point) }), "id 0")
	require.NoError(t, r.Register(1, func() serde.Type { return new(point) }))
	require.Error(t, r.Register(1, func() serde.Type { return new(inner) }), "duplicate id")
	require.Error(t, r.Register(2, func() serde.Type { return new(point) }), "duplicate type")
	require.Error(t, r.Register(3, func() serde.Type { return nil }), "nil value")
	require.Error(t, r.Register(4, nil), "nil factory")
	require.NoError(t, r.Register(1<<63, func() serde.Type { return new(inner) }))

	id, ok := r.ID(&point{})
	require.True(t, ok)
	require.Equal(t, uint64(1), id)
	id, ok = r.ID(&inner{})
	require.True(t, ok)
	require.Equal(t, uint64(1<<63), id)
	_, ok = r.ID(&rich{})
	require.False(t, ok)
	_, ok = r.ID(nil)
	require.False(t, ok)

	v, ok := r.New(1)
	require.True(t, ok)
	require.IsType(t, &point{}, v)
	_, ok = r.New(2)
	require.False(t, ok)

	var nilReg *serde.Registry
	_, ok = nilReg.ID(&point{})
	require.False(t, ok)
	_, ok = nilReg.New(1)
	require.False(t, ok)

	p := &point{}
	require.Zero(t, testing.AllocsPerRun(100, func() { r.ID(p) }))

	// Concurrent lookups after registration.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if id, ok := r.ID(p); !ok || id != 1 {
					panic("bad id")
				}
				if _, ok := r.New(1 << 63); !ok {
					panic("bad new")
				}
			}
		}()
	}
	wg.Wait()
}
