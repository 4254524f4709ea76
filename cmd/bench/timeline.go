package main

import (
	"context"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Sample is one interval of the measured window, for the report's charts
// over time.
type Sample struct {
	// T is the end of the interval, in seconds since the window began.
	T   float64 `json:"t"`
	QPS float64 `json:"qps"`
	// Latencies of the requests completed in the interval, microseconds.
	P50Us  int64 `json:"p50_us"`
	P99Us  int64 `json:"p99_us"`
	P999Us int64 `json:"p999_us"`
	// CPUPerReqUs is the process's CPU time in the interval per request.
	CPUPerReqUs float64 `json:"cpu_us_per_request"`
}

// Bucket is one bar of the latency histogram: the requests whose latency
// was above the previous bucket's bound and at most UpToUs.
type Bucket struct {
	UpToUs int64 `json:"up_to_us"`
	Count  int64 `json:"count"`
}

// sampleEvery returns the interval of the timeline for a window of d:
// about 50 samples, none shorter than 100 ms.
func sampleEvery(d time.Duration) time.Duration {
	return max(d/50, 100*time.Millisecond)
}

// processCPU returns the CPU time (user + system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure waits out the window of d (or until ctx ends), taking a Sample
// every sampleEvery(d) from the completions counter and the shards'
// interval histograms.
func (r *runner) measure(ctx context.Context, d time.Duration, completed func() int64) []Sample {
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(sampleEvery(d))
	defer tick.Stop()
	var out []Sample
	win := hdrhistogram.New(1, maxLatencyUs, 3)
	begin, last, lastN, lastCPU := time.Now(), time.Now(), completed(), processCPU()
	sample := func(now time.Time) {
		n, cpu := completed(), processCPU()
		win.Reset()
		for _, sh := range r.shards {
			sh.mu.Lock()
			win.Merge(sh.win)
			sh.win.Reset()
			sh.mu.Unlock()
		}
		s := Sample{T: now.Sub(begin).Seconds()}
		if el := now.Sub(last).Seconds(); el > 0 {
			s.QPS = float64(n-lastN) / el
		}
		if n > lastN {
			s.CPUPerReqUs = float64(cpu-lastCPU) / float64(time.Microsecond) / float64(n-lastN)
		}
		if win.TotalCount() > 0 {
			s.P50Us, s.P99Us, s.P999Us = win.ValueAtQuantile(50), win.ValueAtQuantile(99), win.ValueAtQuantile(99.9)
		}
		out = append(out, s)
		last, lastN, lastCPU = now, n, cpu
	}
	var over time.Time // when the window's time was up (zero: not yet)
	done := func(now time.Time) bool {
		if over.IsZero() {
			over = now
		}
		return testHookWindowDone == nil || testHookWindowDone(completed(), len(out), now.Sub(over))
	}
	for {
		select {
		case now := <-tick.C:
			sample(now)
			if !over.IsZero() && done(now) {
				return out
			}
		case now := <-t.C:
			sample(now)
			if done(now) {
				return out
			}
		case <-ctx.Done():
			return out
		}
	}
}

// testHookWindowDone, if set by a test, decides when a measured window
// whose time is up ends: measure asks it at the end of the window's time
// and at each sample after that, with the completions measured so far, the
// samples taken and how long past its time the window is (0 at the first
// call of a window, at the end of its time), and ends the
// window once it reports true (ctx still ends it at once). The raw floor's
// streams (floorStream) ask it too, with the writes made as measured, no
// samples, before each write once their time is up. Tests hold a
// window open until what they assert on has happened, so that a process
// that gets no CPU for a whole window does not fail them (docs/testing.md).
var testHookWindowDone func(measured int64, samples int, overtime time.Duration) bool

// buckets folds h into bars with bounds 1, 2, 5, 10, 20, 50, ... µs, from
// the first bar that holds a request to the last, empty bars between kept.
func buckets(h *hdrhistogram.Histogram) []Bucket {
	var out []Bucket
	i := -1 // index of the bound of out's last bar
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		k := max(i, 0)
		for bar.To > bucketBound(k) {
			k++
		}
		if i < 0 {
			i = k - 1
		}
		for i < k {
			i++
			out = append(out, Bucket{UpToUs: bucketBound(i)})
		}
		out[len(out)-1].Count += bar.Count
	}
	return out
}

// bucketBound returns the i-th bound of 1, 2, 5, 10, 20, 50, ...
func bucketBound(i int) int64 {
	b := [3]int64{1, 2, 5}[i%3]
	for range i / 3 {
		b *= 10
	}
	return b
}
