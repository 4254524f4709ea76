// Package hol is the head-of-line workload shared by ipcframe's benchmarks
// (ipc's BenchmarkHeadOfLine, cmd/bench -mode hol, bench/peers): small
// request/response calls issued from application goroutines, measured idle
// and beside a bulk flow of large messages on the same connection, and the
// bulk flow measured alone and beside the small calls.
//
// The driver knows nothing about the engine under test: a Client issues one
// blocking small call or one blocking bulk transfer, as an application would
// (each caller on its own goroutine, waiting for its own result).
package hol

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Client is the engine under test, connected to its server. Every method is
// called from many goroutines at once and blocks until its call completes.
type Client interface {
	// Small sends p as a request and waits for the echoed response.
	Small(ctx context.Context, p []byte) error
	// Bulk moves p to the server: an echo (request and response of len(p)
	// bytes) or a one-way message, depending on how the client was built.
	// It returns when the transfer completed (response received, or message
	// written for a one-way send).
	Bulk(ctx context.Context, p []byte) error
}

// Options describe one head-of-line run.
type Options struct {
	SmallSize   int           // bytes per small call (default 1 KiB)
	Concurrency int           // goroutines issuing small calls (default 1)
	BulkSize    int           // bytes per bulk message (default 16 MiB)
	BulkEcho    bool          // bulk messages are echoed (counted both ways)
	Window      time.Duration // each of the three measured windows (default 2 s)
}

func (o *Options) defaults() {
	if o.SmallSize == 0 {
		o.SmallSize = 1 << 10
	}
	if o.Concurrency == 0 {
		o.Concurrency = 1
	}
	if o.BulkSize == 0 {
		o.BulkSize = 16 << 20
	}
	if o.Window == 0 {
		o.Window = 2 * time.Second
	}
}

// Latency summarises the small calls of one window.
type Latency struct {
	Calls int64         // calls completed in the window
	P50   time.Duration // median
	P99   time.Duration
	Max   time.Duration
}

// Result is one run: small calls idle and beside the bulk flow, the bulk
// flow alone and beside the small calls. Ratios are within this run.
type Result struct {
	Options
	Idle      Latency // small calls, no bulk flow
	WithBulk  Latency // small calls while the bulk flow runs
	BulkAlone float64 // bulk MB/s (10^6 bytes, both directions for echoes), alone
	BulkMixed float64 // bulk MB/s beside the small calls

	// CPU used by the whole process in each window, in cores (CPU time over
	// wall time): with the rates above it shows whether two flows that each
	// fill the machine alone can meet both ratio targets together
	// (CPUBudget).
	IdleCores, BulkCores, MixedCores float64
}

// CPUBudget is the CPU the targets ask for together, as a share of what the
// two flows used alone: half the idle small calls' cores plus 0.8 of the
// bulk flow's cores, over the most cores any window used. Above 1 the
// targets need more CPU than the machine gave either flow alone, so they
// can only be met together if mixing makes each call or byte cheaper.
func (r Result) CPUBudget() float64 {
	most := max(r.IdleCores, r.BulkCores, r.MixedCores)
	return ratio(0.5*r.IdleCores+0.8*r.BulkCores, most)
}

// P99Ratio is the small-call p99 with bulk over its idle p99 (target ≤ 2).
func (r Result) P99Ratio() float64 { return ratio(float64(r.WithBulk.P99), float64(r.Idle.P99)) }

// CallsRatio is the small calls completed with bulk over idle (target ≥ 0.5).
func (r Result) CallsRatio() float64 { return ratio(float64(r.WithBulk.Calls), float64(r.Idle.Calls)) }

// BulkRatio is the bulk rate beside small calls over alone (target ≥ 0.8).
func (r Result) BulkRatio() float64 { return ratio(r.BulkMixed, r.BulkAlone) }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// String is one line for logs.
func (r Result) String() string {
	kind := "oneway"
	if r.BulkEcho {
		kind = "echo"
	}
	return fmt.Sprintf("c=%d bulk=%s %dMiB: small p50/p99/max idle %v/%v/%v calls %d; with bulk %v/%v/%v calls %d; bulk MB/s alone %.0f mixed %.0f; ratios p99 %.2fx calls %.2fx bulk %.2fx; cores idle/bulk/mixed %.2f/%.2f/%.2f, CPU budget %.2f",
		r.Concurrency, kind, r.BulkSize>>20,
		r.Idle.P50, r.Idle.P99, r.Idle.Max, r.Idle.Calls,
		r.WithBulk.P50, r.WithBulk.P99, r.WithBulk.Max, r.WithBulk.Calls,
		r.BulkAlone, r.BulkMixed, r.P99Ratio(), r.CallsRatio(), r.BulkRatio(),
		r.IdleCores, r.BulkCores, r.MixedCores, r.CPUBudget())
}

// Run measures three windows in turn on c: small calls alone, the bulk flow
// alone, then both together. A failed call ends the run with its error.
func Run(ctx context.Context, c Client, o Options) (Result, error) {
	o.defaults()
	res := Result{Options: o}
	var err error
	if res.Idle, _, res.IdleCores, err = window(ctx, c, o, true, false); err != nil {
		return res, fmt.Errorf("small calls alone: %w", err)
	}
	if _, res.BulkAlone, res.BulkCores, err = window(ctx, c, o, false, true); err != nil {
		return res, fmt.Errorf("bulk alone: %w", err)
	}
	if res.WithBulk, res.BulkMixed, res.MixedCores, err = window(ctx, c, o, true, true); err != nil {
		return res, fmt.Errorf("small calls beside bulk: %w", err)
	}
	return res, nil
}

// window runs the selected flows for o.Window and returns the small calls'
// latency, the bulk rate and the cores the process used. Calls still in
// flight at the end are waited for but not counted.
func window(ctx context.Context, c Client, o Options, small, bulk bool) (Latency, float64, float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		bulkN    atomic.Int64
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		stop.Store(true)
	}
	lats := make([][]time.Duration, o.Concurrency)
	if bulk {
		// The bulk flow starts first and gets a moment to fill the pipe, as a
		// long transfer would have when a small call arrives.
		started := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := make([]byte, o.BulkSize)
			once := false
			for !stop.Load() {
				if !once {
					close(started)
					once = true
				}
				if err := c.Bulk(ctx, p); err != nil {
					if !stop.Load() {
						fail(err)
					}
					return
				}
				if !stop.Load() {
					bulkN.Add(int64(len(p)))
				}
			}
		}()
		<-started
	}
	begin, cpu0 := time.Now(), processCPU()
	if small {
		for g := range o.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := make([]byte, o.SmallSize)
				l := make([]time.Duration, 0, 1<<14)
				for !stop.Load() {
					t0 := time.Now()
					if err := c.Small(ctx, p); err != nil {
						if !stop.Load() {
							fail(err)
						}
						break
					}
					if !stop.Load() {
						l = append(l, time.Since(t0))
					}
				}
				lats[g] = l
			}()
		}
	}
	t := time.NewTimer(o.Window)
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	stop.Store(true)
	elapsed, cpu := time.Since(begin), processCPU()-cpu0
	wg.Wait()
	if firstErr != nil {
		return Latency{}, 0, 0, firstErr
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	var lat Latency
	if len(all) > 0 {
		slices.Sort(all)
		lat = Latency{Calls: int64(len(all)), P50: all[len(all)/2], P99: all[len(all)*99/100], Max: all[len(all)-1]}
	}
	mb := float64(bulkN.Load()) / elapsed.Seconds() / 1e6
	if o.BulkEcho {
		mb *= 2
	}
	return lat, mb, cpu.Seconds() / elapsed.Seconds(), nil
}
