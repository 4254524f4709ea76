package ipc_test

import (
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/hol"
	"github.com/ipcframe/ipcframe/ipc"
)

// BenchmarkHeadOfLineLegs splits the time of a 1 KiB call beside a flow of
// 16 MiB messages (echoed, or one way) on the same connection, c=1, into
// its legs (docs/benchmarks.md, head-of-line): request (send until the
// server's handler runs), response (handler until the client's completion
// callback runs) and wake (callback until the calling goroutine runs).
// bulk=none measures the same legs with no bulk flow, the idle reference.
// The server's handler writes its clock reading into the echoed payload;
// client and server share the process and the clock. Run it once
// (-benchtime 1x); -hol.window sets the measured window.
func BenchmarkHeadOfLineLegs(b *testing.B) {
	for _, bulk := range []string{"none", "echo", "oneway"} {
		echo := bulk == "echo"
		b.Run("bulk="+bulk, func(b *testing.B) {
			base := time.Now()
			sp := ipc.NewProtocol()
			ipc.MustRegister(sp, 1, func(ctx ipc.Context, m *hol.SmallMsg) {
				binary.LittleEndian.PutUint64(m.Data[8:], uint64(time.Since(base)))
				_ = ctx.Respond(m)
			})
			ipc.MustRegister(sp, 2, func(ctx ipc.Context, m *hol.BulkEchoMsg) { _ = ctx.Respond(m) })
			ipc.MustRegister(sp, 3, func(ctx ipc.Context, m *hol.BulkMsg) {})
			server := startBenchService(b, ipc.Config{Protocol: sp, Listen: "127.0.0.1:0"})
			client := startBenchService(b, ipc.Config{Protocol: hol.ClientProtocol()})
			c := &hol.IPC{Svc: client, Addr: server.Addr().String(), BulkEcho: echo}
			ctx := context.Background()
			var stop atomic.Bool
			var wg sync.WaitGroup
			started := make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := make([]byte, 16<<20)
				close(started)
				for bulk != "none" && !stop.Load() {
					if err := c.Bulk(ctx, p); err != nil {
						b.Error(err)
						return
					}
				}
			}()
			<-started
			var total, req, resp, wake []time.Duration
			for range b.N {
				p := make([]byte, 1<<10)
				end := time.Now().Add(*holWindow)
				for time.Now().Before(end) {
					s0 := time.Since(base)
					done := make(chan time.Duration, 1)
					var srv time.Duration
					_, err := ipc.SendRequestContext(ctx, client, c.Addr, &hol.SmallMsg{Data: p}, 0,
						func(_, r *hol.SmallMsg, err error) {
							if err == nil {
								srv = time.Duration(binary.LittleEndian.Uint64(r.Data[8:]))
							}
							done <- time.Since(base)
						})
					if err != nil {
						b.Fatal(err)
					}
					cb := <-done
					now := time.Since(base)
					total, req, resp, wake = append(total, now-s0), append(req, srv-s0), append(resp, cb-srv), append(wake, now-cb)
				}
			}
			stop.Store(true)
			wg.Wait()
			for _, l := range []struct {
				name string
				d    []time.Duration
			}{{"total", total}, {"request", req}, {"response", resp}, {"wake", wake}} {
				slices.Sort(l.d)
				p50, p99 := l.d[len(l.d)/2], l.d[len(l.d)*99/100]
				b.Logf("%-8s calls %d p50 %v p99 %v", l.name, len(l.d), p50, p99)
				b.ReportMetric(float64(p50.Microseconds()), l.name+"-p50-µs")
				b.ReportMetric(float64(p99.Microseconds()), l.name+"-p99-µs")
			}
		})
	}
}
