package ipc_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime/trace"
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
// (-benchtime 1x); -hol.window sets the measured window. With -test.trace
// each call's legs are marked in the trace (traceLeg), so that a trace can
// be cut per call (docs/benchmarks.md, "Head-of-line at c=1, tenth
// session").
func BenchmarkHeadOfLineLegs(b *testing.B) {
	for _, bulk := range []string{"none", "echo", "oneway"} {
		echo := bulk == "echo"
		b.Run("bulk="+bulk, func(b *testing.B) {
			base := time.Now()
			sp := ipc.NewProtocol()
			ipc.MustRegister(sp, 1, func(ctx ipc.Context, m *hol.SmallMsg) {
				binary.LittleEndian.PutUint64(m.Data[8:], uint64(time.Since(base)))
				traceLeg("handler")
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
					traceLeg("send")
					done := make(chan time.Duration, 1)
					var srv time.Duration
					_, err := ipc.SendRequestContext(ctx, client, c.Addr, &hol.SmallMsg{Data: p}, 0,
						func(_, r *hol.SmallMsg, err error) {
							if err == nil {
								srv = time.Duration(binary.LittleEndian.Uint64(r.Data[8:]))
							}
							traceLeg("callback")
							done <- time.Since(base)
						})
					if err != nil {
						b.Fatal(err)
					}
					cb := <-done
					traceLeg("woken")
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

// traceLeg marks a small call's leg in the execution trace, if one is
// being taken (-test.trace): its events ("send", "handler", "callback",
// "woken", category "hol") let a trace's timeline be cut per call.
func traceLeg(ev string) {
	if trace.IsEnabled() {
		trace.Log(context.Background(), "hol", ev)
	}
}

// BenchmarkHeadOfLineBulk runs 16 MiB messages (echoed, or one way) on one
// connection for -hol.window, alone (calls=0), beside 1 KiB calls at c=1
// from the start (calls=1), or beside calls that start after the warm-up
// (calls=late, the order of the hol workload: the flow first ran alone,
// grew its window to MessageWindow and its receive buffer, pipe.go), or
// beside 16 callers of 1 KiB calls from the start (calls=16, whose
// latencies it does not record: the fair share of the window, window.go).
// It reports the bulk flow's MB/s, the small calls per second, and their
// first, p99 and slowest latencies: the states to profile side by side
// (-test.cpuprofile, one sub-benchmark per process) when the bulk flow
// beside the calls is compared with the flow alone (docs/benchmarks.md,
// "Head-of-line at c=1, eighth session"). The first half second is a
// warm-up; the bulk flow counts whole messages, so use windows of seconds;
// with calls=1 the first call also waits for the connection to open.
// It also counts, over the whole run, the credit stalls (writer.block)
// and the grants of both ends (window.go), and both services' spin
// backoffs, skipped spins, yields and bytes read straight into values
// (reactor.Stats).
func BenchmarkHeadOfLineBulk(b *testing.B) {
	for _, bulk := range []string{"echo", "oneway"} {
		for _, calls := range []string{"0", "1", "late", "16"} {
			b.Run(fmt.Sprintf("bulk=%s/calls=%s", bulk, calls), func(b *testing.B) {
				var credit ipc.CreditCounts
				b.Cleanup(ipc.CountCredit(&credit))
				client := startBenchService(b, ipc.Config{Protocol: hol.ClientProtocol()})
				server := startBenchService(b, ipc.Config{Protocol: hol.ServerProtocol(), Listen: "127.0.0.1:0"})
				c := &hol.IPC{Svc: client, Addr: server.Addr().String(), BulkEcho: bulk == "echo"}
				for range b.N {
					res, err := holBulkWindow(c, calls, 500*time.Millisecond, *holWindow)
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(res.mbps, "bulk-MB/s")
					b.ReportMetric(res.callsPerSec, "calls/s")
					// Both ends, the whole run with its warm-up
					// (window.go): credit stalls and grants.
					b.ReportMetric(float64(credit.Stalls.Load()), "stalls")
					b.ReportMetric(float64(credit.Grants.Load()), "grants")
					// The share of the run some message waited out of
					// credit, and a grant's time from the reader that
					// queued it to the writer it reached.
					b.ReportMetric(float64(credit.StalledNs.Load())/float64(b.Elapsed().Nanoseconds()), "stalled-share")
					b.ReportMetric(float64(credit.Dry.Load()), "dry")
					b.ReportMetric(float64(credit.Wet.Load()), "wet")
					b.ReportMetric(float64(credit.Ahead.Load()), "ahead")
					if p50, p90, k := credit.GrantLatency(); k > 0 {
						b.ReportMetric(float64(p50.Microseconds()), "grant-p50-µs")
						b.ReportMetric(float64(p90.Microseconds()), "grant-p90-µs")
					}
					// Both services' busy polls after bulk transfers
					// (reactor/spin.go): ended early on a contended CPU,
					// and skipped during the backoff that follows.
					cs, ss := ipc.ReactorStats(client), ipc.ReactorStats(server)
					b.ReportMetric(float64(cs.SpinBackoffs+ss.SpinBackoffs), "spin-backoffs")
					b.ReportMetric(float64(cs.SpinsSkipped+ss.SpinsSkipped), "spins-skipped")
					b.ReportMetric(float64(cs.Yields+ss.Yields), "yields")
					b.ReportMetric(float64(cs.DirectBytes+ss.DirectBytes)/(1<<20), "direct-MiB")
					if len(res.lat) > 0 {
						b.ReportMetric(float64(res.lat[0].Microseconds()), "first-µs")
						slices.Sort(res.lat)
						b.ReportMetric(float64(res.lat[len(res.lat)*99/100].Microseconds()), "p99-µs")
						b.ReportMetric(float64(res.lat[len(res.lat)-1].Microseconds()), "max-µs")
					}
				}
			})
		}
	}
}

// holBulkResult is what holBulkWindow measured: the bulk rate, the small
// calls per second in the measured window, and the latency of every small
// call, in the order they were made.
type holBulkResult struct {
	mbps, callsPerSec float64
	lat               []time.Duration
}

// holBulkWindow moves 16 MiB messages through c and, unless calls is "0",
// issues 1 KiB calls one at a time beside them ("1": from the start,
// "late": from the end of the warm-up); it measures both for window after
// warm.
func holBulkWindow(c *hol.IPC, calls string, warm, window time.Duration) (holBulkResult, error) {
	ctx := context.Background()
	var stop, measuring atomic.Bool
	var moved, done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	loop := func(f func() error) { goUntil(&stop, &wg, errs, f) }
	big, p := make([]byte, 16<<20), make([]byte, 1<<10)
	n := int64(len(big))
	if c.BulkEcho {
		n *= 2
	}
	loop(func() error {
		err := c.Bulk(ctx, big)
		if measuring.Load() {
			moved.Add(n)
		}
		return err
	})
	var lat []time.Duration // owned by the small caller until wg.Wait
	small := func() error {
		t0 := time.Now()
		err := c.Small(ctx, p)
		lat = append(lat, time.Since(t0))
		if measuring.Load() {
			done.Add(1)
		}
		return err
	}
	if calls == "1" {
		loop(small)
	}
	if calls == "16" {
		for range 16 {
			q := make([]byte, 1<<10)
			loop(func() error {
				err := c.Small(ctx, q)
				if measuring.Load() {
					done.Add(1)
				}
				return err
			})
		}
	}
	time.Sleep(warm)
	if calls == "late" {
		loop(small)
	}
	measuring.Store(true)
	start := time.Now()
	time.Sleep(window)
	measuring.Store(false)
	d := time.Since(start)
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-errs:
		return holBulkResult{}, err
	default:
	}
	return holBulkResult{float64(moved.Load()) / d.Seconds() / 1e6, float64(done.Load()) / d.Seconds(), lat}, nil
}
