package ipc_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ipcframe/ipcframe/ipc"
)

// BenchmarkSendRequestContext measures the asynchronous call with a
// context as an application uses it: conc goroutines each sending a 1 KiB
// plain request (no Recyclable) with SendRequestContext and waiting for
// its callback on a channel, over one loopback connection; with
// context.Background() and with a long-lived cancelable context (each send
// then registers a context watch). allocs/op covers client and server (the
// two decoded messages and their bytes are the receivers').
func BenchmarkSendRequestContext(b *testing.B) {
	for _, conc := range []int{1, 64} {
		for _, cancelable := range []bool{false, true} {
			name := fmt.Sprintf("conc=%d/ctx=background", conc)
			if cancelable {
				name = fmt.Sprintf("conc=%d/ctx=cancelable", conc)
			}
			b.Run(name, func(b *testing.B) { benchSendRequestContext(b, conc, cancelable) })
		}
	}
}

func benchSendRequestContext(b *testing.B, conc int, cancelable bool) {
	const size = 1024
	sp := ipc.NewProtocol()
	ipc.MustRegister(sp, 1, echoCall)
	server := startBenchService(b, ipc.Config{Protocol: sp, Listen: "127.0.0.1:0", MaxReaderSlots: 64 + conc})
	cp := ipc.NewProtocol()
	ipc.MustRegister[callMsg](cp, 1, nil)
	client := startBenchService(b, ipc.Config{Protocol: cp, MaxQueuedMessages: 4096, MaxResponseWait: 1024})
	addr := server.Addr().String()
	ctx := context.Background()
	if cancelable {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
	}
	if _, err := ipc.Call[callMsg, callMsg](context.Background(), client, addr, &callMsg{}, 0); err != nil {
		b.Fatal(err) // connect outside the measurement
	}
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	b.SetBytes(int64(2 * size))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	defer func() { reportCPU(b, processCPU(b)-cpu0) }()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &callMsg{Data: make([]byte, size)}
			done := make(chan error, 1)
			cb := func(_, _ *callMsg, err error) { done <- err }
			for left.Add(-1) >= 0 {
				if _, err := ipc.SendRequestContext(ctx, client, addr, req, 0, cb); err != nil {
					b.Error(err)
					return
				}
				if err := <-done; err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
