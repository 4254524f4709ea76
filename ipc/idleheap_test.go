package ipc

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// idleHeap measures the Go heap each idle connection costs, each side: a
// server in this process accepts n connections from a client in a peer
// process (peerproc_test.go); with use, the client first makes one 1 KiB
// echo call on each connection. The server's cost is the growth of this
// process's live heap (after a full GC) from the running service with no
// connection to the service with n; the client measures its own side the
// same way. Both results are bytes per connection.
func idleHeap(tb testing.TB, n int, use bool) (accepted, dialed int64) {
	tb.Helper()
	raiseFileLimit()
	closed := make(chan struct{}, peerWarmups)
	s, err := NewService(Config{
		Protocol: peerProtocol(true), Listen: "127.0.0.1:0",
		ConnectionStop: func(ConnInfo, error) {
			select {
			case closed <- struct{}{}:
			default: // the n connections at the end
			}
		},
	})
	require.NoError(tb, err)
	require.NoError(tb, s.Start())
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(tb, s.Stop(ctx))
	}()
	// The peer's warm-up connections reach every loop here too: the
	// baseline is taken once they are gone, so it includes the loops'
	// buffers.
	u := "0"
	if use {
		u = "1"
	}
	peer := startPeer(tb, "client", s.Addr().String(), strconv.Itoa(n), u)
	for range peerWarmups {
		<-closed
	}
	base := heapAlloc()
	require.Equal(tb, strconv.Itoa(n), peer.expect(tb, "ready"))
	dialed, err = strconv.ParseInt(peer.expect(tb, "heap"), 10, 64)
	require.NoError(tb, err)
	require.Equal(tb, uint64(n), s.Stats().Connections.Open())
	accepted = (int64(heapAlloc()) - int64(base)) / int64(n)
	return accepted, dialed
}

// TestIdleConnectionHeap pins the memory of idle connections: at most
// 4 KiB of Go heap each, on the accepting and on the dialing side, for
// connections that carried one 1 KiB echo and then went quiet
// (BenchmarkIdleConnectionHeap measures 10,000; docs/benchmarks.md).
func TestIdleConnectionHeap(t *testing.T) {
	accepted, dialed := idleHeap(t, 1000, true)
	t.Logf("heap per idle connection: accepted %d B, dialed %d B", accepted, dialed)
	require.LessOrEqual(t, accepted, int64(4096), "heap per idle accepted connection")
	require.LessOrEqual(t, dialed, int64(4096), "heap per idle dialed connection")
}

// BenchmarkIdleConnectionHeap reports the Go heap per idle connection,
// each side, with 10,000 connections, never used or after one echo each.
// It measures once whatever b.N is; run it with -benchtime 1x.
func BenchmarkIdleConnectionHeap(b *testing.B) {
	for _, use := range []bool{false, true} {
		name := "fresh"
		if use {
			name = "after-echo"
		}
		b.Run(fmt.Sprintf("%s/conns=10000", name), func(b *testing.B) {
			accepted, dialed := idleHeap(b, 10000, use)
			b.ReportMetric(float64(accepted), "B/accepted")
			b.ReportMetric(float64(dialed), "B/dialed")
		})
	}
}

// TestCutPacketBufferReleasedWhenIdle: the buffer that holds a packet cut
// by the end of a read is kept while packets keep being cut, and dropped at
// the first tick after a tick period with none (conn.releaseIdle).
func TestCutPacketBufferReleasedWhenIdle(t *testing.T) {
	cfg, err := Config{Protocol: peerProtocol(false)}.withDefaults()
	require.NoError(t, err)
	c := newConn(&Service{cfg: cfg}, nil)
	require.NoError(t, c.feed(keepAlivePacket[:2])) // half a header
	require.Len(t, c.rest, 2)
	c.releaseIdle()
	require.NotNil(t, c.rest, "a cut packet is pending")
	require.NoError(t, c.feed(keepAlivePacket[2:3])) // more of it, still cut
	c.rest = c.rest[:0]                              // as when the packet completes
	c.releaseIdle()
	require.NotNil(t, c.rest, "a packet was cut in this period")
	c.releaseIdle()
	require.Nil(t, c.rest, "no packet cut for a whole period")
}
