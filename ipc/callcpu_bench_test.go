package ipc_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/hol"
	"github.com/ipcframe/ipcframe/ipc"
)

// BenchmarkSmallCallCPU measures what the head-of-line workload's flows cost
// in CPU, one state per sub-benchmark, so that a profile (-cpuprofile, or
// perf stat / perf record around the test binary) covers that state only:
// "idle" is 1 KiB calls from 16 goroutines alone, "bulk=echo" and
// "bulk=oneway" the 16 MiB flow alone, "mixed=echo" and "mixed=oneway" both
// on the same connection (the three windows of BenchmarkHeadOfLine at
// c=16, with its message types and client). Select one with -bench
// 'BenchmarkSmallCallCPU/mixed=echo$' and run it once (-benchtime 1x);
// -hol.window sets the measured window, after a warm-up of a quarter of it.
//
// It reports the rates, the cores the process used (CPU time over wall
// time) and, for a flow alone, its unit cost: CPU-µs per small call in
// "idle", CPU-ms per MB of bulk in "bulk" (all of the process's CPU over
// the flow). The unit costs decide whether both flows fit the machine
// together: the head-of-line targets ask for half the idle calls and 0.8
// of the bulk rate at once, which at these costs is CPU-µs/call × calls/s
// / 2 + 0.8 × CPU-ms/MB × MB/s cores (docs/benchmarks.md, "CPU per small
// call, ninth session").
func BenchmarkSmallCallCPU(b *testing.B) {
	for _, name := range []string{"idle", "bulk=echo", "bulk=oneway", "mixed=echo", "mixed=oneway"} {
		b.Run(name, func(b *testing.B) {
			small := name == "idle" || name[:5] == "mixed"
			bulk := name != "idle"
			echo := name == "bulk=echo" || name == "mixed=echo"
			server := startBenchService(b, ipc.Config{Protocol: hol.ServerProtocol(), Listen: "127.0.0.1:0"})
			client := startBenchService(b, ipc.Config{Protocol: hol.ClientProtocol()})
			c := &hol.IPC{Svc: client, Addr: server.Addr().String(), BulkEcho: echo}
			for range b.N {
				res, err := callCPUWindow(c, small, bulk, *holWindow/4, *holWindow)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(res.calls, "calls/s")
				b.ReportMetric(res.mbps, "bulk-MB/s")
				b.ReportMetric(res.cores, "cores")
				if !bulk && res.calls > 0 {
					b.ReportMetric(res.cores/res.calls*1e6, "cpu-µs/call")
				}
				if !small && res.mbps > 0 {
					b.ReportMetric(res.cores/res.mbps*1e3, "cpu-ms/MB")
				}
			}
		})
	}
}

// callCPUResult is what callCPUWindow measured: small calls and bulk MB per
// second, and the cores the process used meanwhile.
type callCPUResult struct{ calls, mbps, cores float64 }

// callCPUWindow runs 16 goroutines of 1 KiB calls (small) and a flow of
// 16 MiB messages (bulk) through c, and measures them for window after
// warm. Work in flight at the end is waited for, not counted.
func callCPUWindow(c *hol.IPC, small, bulk bool, warm, window time.Duration) (callCPUResult, error) {
	const conc = 16
	ctx := context.Background()
	var (
		stop, measuring atomic.Bool
		calls, moved    atomic.Int64
		wg              sync.WaitGroup
	)
	errs := make(chan error, conc+1)
	loop := func(f func() error) { goUntil(&stop, &wg, errs, f) }
	if bulk {
		big := make([]byte, 16<<20)
		n := int64(len(big))
		if c.BulkEcho {
			n *= 2
		}
		loop(func() error {
			err := c.Bulk(ctx, big)
			if err == nil && measuring.Load() {
				moved.Add(n)
			}
			return err
		})
	}
	if small {
		for range conc {
			p := make([]byte, 1<<10)
			loop(func() error {
				err := c.Small(ctx, p)
				if err == nil && measuring.Load() {
					calls.Add(1)
				}
				return err
			})
		}
	}
	time.Sleep(warm) // a benchmark's window, not a wait for an event
	measuring.Store(true)
	start, cpu0 := time.Now(), cpuTime()
	time.Sleep(window)
	measuring.Store(false)
	d, cpu := time.Since(start), cpuTime()-cpu0
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-errs:
		return callCPUResult{}, fmt.Errorf("small calls %v, bulk %v: %w", small, bulk, err)
	default:
	}
	s := d.Seconds()
	return callCPUResult{float64(calls.Load()) / s, float64(moved.Load()) / s / 1e6, cpu.Seconds() / s}, nil
}

// goUntil runs f over and over on a goroutine of wg until stop is set or f
// fails; the first error goes to errs, which must have room for it.
func goUntil(stop *atomic.Bool, wg *sync.WaitGroup, errs chan<- error, f func() error) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if err := f(); err != nil {
				errs <- err
				return
			}
		}
	}()
}
