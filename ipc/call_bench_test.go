package ipc_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	client, addr := callBenchPair(b)
	runCallers(b, conc, size, func() func(req *callMsg) error {
		return func(req *callMsg) error {
			_, err := ipc.Call[callMsg, callMsg](context.Background(), client, addr, req, 0)
			return err
		}
	})
}

// callBenchPair starts an echo server and a client for the call
// benchmarks, connected (outside the measurement), and returns the client
// and the server's address.
func callBenchPair(b *testing.B) (*ipc.Service, string) {
	sp := ipc.NewProtocol()
	ipc.MustRegister(sp, 1, echoCall)
	server := startBenchService(b, ipc.Config{Protocol: sp, Listen: "127.0.0.1:0", MaxQueuedMessages: 4096, MaxReaderSlots: 64 + 1024})
	cp := ipc.NewProtocol()
	ipc.MustRegister[callMsg](cp, 1, nil)
	client := startBenchService(b, ipc.Config{Protocol: cp, MaxQueuedMessages: 4096, MaxResponseWait: 1024})
	addr := server.Addr().String()
	if _, err := ipc.Call[callMsg, callMsg](context.Background(), client, addr, &callMsg{}, 0); err != nil {
		b.Fatal(err)
	}
	return client, addr
}

// runCallers runs b.N calls of size bytes each way from conc goroutines,
// each calling with its own function from newCaller, and reports bytes,
// allocations and the process's CPU per call.
func runCallers(b *testing.B, conc, size int, newCaller func() func(req *callMsg) error) {
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
		call := newCaller()
		go func() {
			defer wg.Done()
			req := &callMsg{Data: make([]byte, size)}
			for left.Add(-1) >= 0 {
				if err := call(req); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkCallHops splits a concurrency-1 Call round trip of a 1 KiB
// plain message into its two halves, timed in one process: caller to
// server handler (caller goroutine → client loop → socket → server loop)
// and handler back to the caller (server loop → socket → client loop →
// caller goroutine). It reports their medians and the round trip's 99th
// percentile, with busy polling at its default and off.
func BenchmarkCallHops(b *testing.B) {
	for _, bp := range []time.Duration{0, -1} {
		name := "busypoll=default"
		if bp < 0 {
			name = "busypoll=off"
		}
		b.Run(name, func(b *testing.B) { benchCallHops(b, bp) })
	}
}

func benchCallHops(b *testing.B, busyPoll time.Duration) {
	var atHandler atomic.Int64 // monotonic ns since base, set by the handler
	base := time.Now()
	sp := ipc.NewProtocol()
	ipc.MustRegister(sp, 1, func(ctx ipc.Context, m *callMsg) {
		atHandler.Store(int64(time.Since(base)))
		_ = ctx.Respond(m)
	})
	server := startBenchService(b, ipc.Config{Protocol: sp, Listen: "127.0.0.1:0", BusyPoll: busyPoll})
	cp := ipc.NewProtocol()
	ipc.MustRegister[callMsg](cp, 1, nil)
	client := startBenchService(b, ipc.Config{Protocol: cp, BusyPoll: busyPoll})
	addr := server.Addr().String()
	ctx := context.Background()
	req := &callMsg{Data: make([]byte, 1024)}
	if _, err := ipc.Call[callMsg, callMsg](ctx, client, addr, req, 0); err != nil {
		b.Fatal(err)
	}
	there := make([]int64, 0, b.N)
	back := make([]int64, 0, b.N)
	round := make([]int64, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	for range b.N {
		t0 := int64(time.Since(base))
		if _, err := ipc.Call[callMsg, callMsg](ctx, client, addr, req, 0); err != nil {
			b.Fatal(err)
		}
		t2 := int64(time.Since(base))
		t1 := atHandler.Load()
		there, back, round = append(there, t1-t0), append(back, t2-t1), append(round, t2-t0)
	}
	b.StopTimer()
	reportCPU(b, processCPU(b)-cpu0)
	b.ReportMetric(median(there)/1e3, "µs-to-handler")
	b.ReportMetric(median(back)/1e3, "µs-back")
	b.ReportMetric(quantile(round, 0.99)/1e3, "µs-p99")
}

func median(v []int64) float64 { return quantile(v, 0.5) }

// quantile returns the q-quantile of v (sorting v).
func quantile(v []int64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return float64(v[int(float64(len(v)-1)*q)])
}

// reportCPU reports the process's CPU time per operation (getrusage: the
// client, the server and the benchmark's goroutines).
func reportCPU(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
}
