package test

import (
	"sync"
	"testing"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// srArrival is one message as the server saw it.
type srArrival struct {
	conn uint64
	idx  uint32
	sync bool
}

// TestSynchronousRoutingSeveralConnections backs docs/architecture.md §9
// ("Synchronous messages go only to the pool's main connection"): with
// three active connections in the pool, a mix of synchronous and
// asynchronous one-way messages (the asynchronous ones large, so that the
// connections are busy and the pool spreads them) is sent; every message
// arrives exactly once, and the synchronous ones all arrive on one
// connection, in send order.
func TestSynchronousRoutingSeveralConnections(t *testing.T) {
	const (
		n     = 300
		conns = 3
	)
	var (
		mu       sync.Mutex
		arrivals []srArrival
	)
	got := newPLSignal()
	sp := ipc.NewProtocol()
	ipc.MustRegister(sp, 1, func(ctx ipc.Context, m *testmsg.Message) {
		mu.Lock()
		arrivals = append(arrivals, srArrival{ctx.Conn().ID(), m.Idx, ctx.Flags()&ipc.Synchronous != 0})
		mu.Unlock()
		got.notify()
	})
	server := startService(t, ipc.Config{Protocol: sp, Listen: "127.0.0.1:0"})
	addr := server.Addr().String()
	events := newPLEvents()
	client := startService(t, ipc.Config{
		Protocol:             plClientProto(),
		MaxActiveConnections: conns,
		PoolEvent:            events.add,
	})
	require.NoError(t, client.CreatePool(addr, ipc.PoolOptions{MinConnections: conns}))
	events.waitCount(t, ipc.PoolConnectionActivate, conns)

	done := make(chan error, 2*n)
	for i := range n {
		flags, size := ipc.Flags(0), 64<<10
		if i%3 == 0 {
			flags, size = ipc.Synchronous, 100+i
		}
		require.NoError(t, client.Send(addr, testmsg.New(i, size), flags, func(err error) { done <- err }))
	}
	for _, err := range stRecv(t, done, n, "the sends to complete") {
		require.NoError(t, err)
	}
	got.waitFor(t, "every message at the server", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(arrivals) >= n
	})
	st, ok := client.PoolStats(addr)
	require.True(t, ok)
	require.Equal(t, conns, st.Active, "active connections")
	require.NoError(t, client.Stop(t.Context()))
	require.Empty(t, done, "a send completed twice")

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, arrivals, n, "messages received")
	seen := map[uint32]bool{}
	var syncOrder []uint32
	syncConns := map[uint64]bool{}
	asyncConns := map[uint64]int{}
	for _, a := range arrivals {
		require.False(t, seen[a.idx], "message %d received twice", a.idx)
		seen[a.idx] = true
		require.Equal(t, a.idx%3 == 0, a.sync, "message %d's Synchronous flag", a.idx)
		if a.sync {
			syncOrder = append(syncOrder, a.idx)
			syncConns[a.conn] = true
		} else {
			asyncConns[a.conn]++
		}
	}
	want := make([]uint32, 0, n/3)
	for i := 0; i < n; i += 3 {
		want = append(want, uint32(i))
	}
	require.Equal(t, want, syncOrder, "synchronous messages out of send order")
	require.Len(t, syncConns, 1, "synchronous messages on several connections")
	t.Logf("asynchronous messages per connection: %v; synchronous on %v", asyncConns, syncConns)
}
