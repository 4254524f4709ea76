package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ipcframe/ipcframe/internal/hol"
	"github.com/ipcframe/ipcframe/ipc"
)

// Heap warm-up of -mode bulk and -mode stream.
//
// A plain 64 MiB message decodes into a fresh array, so until the
// receiving heap has grown to the size the GC keeps in steady state every
// array is memory the process never touched: the kernel faults in each of
// its pages (a zeroed page per fault), which costs about what the copy
// costs. How long the growth takes depends on where the GC's cycles fall;
// measured inside the window it made single runs slow by chance. So the
// large modes run the workload in warmWindow windows before the measured
// one, until two windows in a row fault in fewer than 1/warmFaultShare of
// the pages they move (both processes with -twoproc), at most warmMax; the
// warm-up is excluded from the numbers and printed as such. warmMax is
// 10 s because on a loaded 2-vCPU host a fault cost about 25 µs: the first
// three pairs of 64 MiB messages, which fault in 16,000-52,000 pages each,
// took 4.7 s, and a 2 s bound ended every warm-up before the heap was warm
// (docs/benchmarks.md, "The lone 64 MiB message, TLS and bench bulk,
// twelfth session").
const (
	warmWindow     = 250 * time.Millisecond
	warmMax        = 10 * time.Second
	warmFaultShare = 16
)

// warmResult is what heapWarm did.
type warmResult struct {
	windows int           // warm-up windows run
	elapsed time.Duration // their total time
	calm    bool          // two windows in a row were under the fault limit
	faults  int64         // minor faults in the last window (all processes)
	pages   int64         // pages moved in the last window
}

func (r warmResult) String() string {
	state := "warm"
	if !r.calm {
		state = fmt.Sprintf("not warm after %v", warmMax)
	}
	return fmt.Sprintf("heap warm-up (excluded from the numbers): %d windows of %v, %.2f s, %s; last window %d faults for %d pages moved",
		r.windows, warmWindow, r.elapsed.Seconds(), state, r.faults, r.pages)
}

// heapWarm sends messages of size bytes (payload, or a stream field with
// stream set) two at a time, as the measured window does, in windows of at
// least warmWindow, until two windows in a row fault in fewer than
// 1/warmFaultShare of the pages they moved in the processes pids, or
// until warmMax. A window counts every message it sent, those still under
// way at its end included (it waits for them).
func heapWarm(ctx context.Context, svc *ipc.Service, addr string, size int64, payload []byte, stream bool, pids []int) (warmResult, error) {
	var r warmResult
	page := int64(os.Getpagesize())
	begin := time.Now()
	calm := 0
	for time.Since(begin) < warmMax && ctx.Err() == nil {
		f0 := sumFaults(pids)
		msgs, err := warmOneWindow(ctx, svc, addr, size, payload, stream)
		if err != nil {
			return r, fmt.Errorf("heap warm-up: %w", err)
		}
		r.windows++
		r.faults = sumFaults(pids) - f0
		r.pages = msgs * size / page
		if r.faults < r.pages/warmFaultShare {
			calm++
		} else {
			calm = 0
		}
		if calm == 2 {
			r.calm = true
			break
		}
	}
	r.elapsed = time.Since(begin)
	return r, nil
}

// warmOneWindow sends messages two at a time until warmWindow has passed
// and returns how many it sent, all acknowledged.
func warmOneWindow(ctx context.Context, svc *ipc.Service, addr string, size int64, payload []byte, stream bool) (int64, error) {
	end := time.Now().Add(warmWindow)
	var (
		mu    sync.Mutex
		msgs  int64 // guarded by mu
		first error // guarded by mu
		wg    sync.WaitGroup
	)
	for range 2 {
		wg.Go(func() {
			for time.Now().Before(end) && ctx.Err() == nil {
				err := hol.SendLarge(ctx, svc, addr, size, payload, stream)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				if err == nil {
					msgs++
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return msgs, first
}

// sumFaults adds up the minor page faults of the processes pids.
func sumFaults(pids []int) int64 {
	var n int64
	for _, pid := range pids {
		f, err := minorFaults(pid)
		if err == nil {
			n += f
		}
	}
	return n
}

// minorFaults returns the minor page faults of process pid so far (field
// 10, minflt, of /proc/pid/stat).
func minorFaults(pid int) (int64, error) {
	v, err := procStat(pid, 10)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}
