package ipc_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ipcframe/ipcframe/ipc"
)

// BenchmarkCall measures the blocking call as an application uses it: conc
// goroutines each calling ipc.Call in a loop, a 1 KiB plain message (no
// Recyclable: each receive allocates the message and its bytes) echoed
// over one loopback connection. allocs/op covers client and server.
func BenchmarkCall(b *testing.B) {
	for _, conc := range []int{1, 64, 1024} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) { benchCall(b, conc, 1024) })
	}
}

func benchCall(b *testing.B, conc, size int) {
	sp := ipc.NewProtocol()
	ipc.MustRegister(sp, 1, echoCall)
	server := startBenchService(b, ipc.Config{Protocol: sp, Listen: "127.0.0.1:0", MaxQueuedMessages: 4096, MaxReaderSlots: 64 + 1024})
	cp := ipc.NewProtocol()
	ipc.MustRegister[callMsg](cp, 1, nil)
	client := startBenchService(b, ipc.Config{Protocol: cp, MaxQueuedMessages: 4096, MaxResponseWait: 1024})
	addr := server.Addr().String()
	ctx := context.Background()
	if _, err := ipc.Call[callMsg, callMsg](ctx, client, addr, &callMsg{}, 0); err != nil {
		b.Fatal(err) // connect outside the measurement
	}
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	b.SetBytes(int64(2 * size))
	b.ReportAllocs()
	b.ResetTimer()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &callMsg{Data: make([]byte, size)}
			for left.Add(-1) >= 0 {
				if _, err := ipc.Call[callMsg, callMsg](ctx, client, addr, req, 0); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
