package test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/internal/hol"
	"github.com/ipcframe/ipcframe/ipc"
)

// TestStream2GiBBoundedHeap sends one message whose stream field carries
// 2 GiB generated on the fly, between two services on loopback. The
// receiver hashes what it gets and acknowledges with the hash; the heap of
// the process (both services) must never grow by more than 64 MiB: neither
// side holds the message.
func TestStream2GiBBoundedHeap(t *testing.T) {
	const size = 2 << 30
	sp := ipc.NewProtocol()
	hol.RegisterBulk(sp, true)
	server := startService(t, ipc.Config{Protocol: sp, Listen: "127.0.0.1:0"})
	cp := ipc.NewProtocol()
	hol.RegisterBulk(cp, false)
	client := startService(t, ipc.Config{Protocol: cp})

	runtime.GC()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	var peak atomic.Uint64
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()

	start := time.Now()
	err := hol.SendLarge(context.Background(), client, server.Addr().String(), size, nil, true)
	mb := float64(size) / time.Since(start).Seconds() / 1e6
	close(stop)
	<-sampled
	require.NoError(t, err)
	growth := int64(peak.Load()) - int64(ms0.HeapInuse)
	t.Logf("2 GiB stream at %.0f MB/s, heap growth %.1f MiB", mb, float64(growth)/(1<<20))
	require.LessOrEqual(t, growth, int64(64<<20))
}
