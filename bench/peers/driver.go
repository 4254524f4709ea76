package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Phases of a closed-loop run. Only calls that start and complete during
// phaseMeasure are counted.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// Histogram range: 100 ns to 2 minutes, 3 significant digits, in nanoseconds.
const (
	histMin     = 100
	histMax     = int64(2 * time.Minute)
	histSigFigs = 3
)

// bulkGrace is added to a bulk run's warmup+dur to bound a stuck peer.
const bulkGrace = 2 * time.Minute

// drainTimeout bounds the wait for in-flight calls after a run stops.
const drainTimeout = 30 * time.Second

// latencyRecorder is a sharded HDR histogram. hdrhistogram.Histogram is not
// safe for concurrent use; callers pick a shard by their own index so that
// shards are rarely contended. Recording does not allocate.
type latencyRecorder struct {
	shards []latencyShard
}

type latencyShard struct {
	mu sync.Mutex // guards h
	h  *hdrhistogram.Histogram
	_  [48]byte // keep shards on separate cache lines
}

func newLatencyRecorder() *latencyRecorder {
	n := 4 * runtime.GOMAXPROCS(0)
	r := &latencyRecorder{shards: make([]latencyShard, n)}
	for i := range r.shards {
		r.shards[i].h = hdrhistogram.New(histMin, histMax, histSigFigs)
	}
	return r
}

func (r *latencyRecorder) record(worker int, d time.Duration) {
	s := &r.shards[worker%len(r.shards)]
	v := int64(d)
	if v < histMin {
		v = histMin
	}
	if v > histMax {
		v = histMax
	}
	s.mu.Lock()
	s.h.RecordValue(v)
	s.mu.Unlock()
}

// count returns the durations recorded so far (holdWindow). It takes each
// shard's lock in turn: not for the measured path.
func (r *latencyRecorder) count() (int64, error) {
	var n int64
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		n += s.h.TotalCount()
		s.mu.Unlock()
	}
	return n, nil
}

// merged returns all shards folded into one histogram. Call it only after
// recording has stopped.
func (r *latencyRecorder) merged() *hdrhistogram.Histogram {
	out := hdrhistogram.New(histMin, histMax, histSigFigs)
	for i := range r.shards {
		out.Merge(r.shards[i].h)
	}
	return out
}

// costSnapshot is the process-wide cost state at one instant. Differences of
// two snapshots divided by completed operations give allocs/op, bytes/op and
// CPU/op, as grpc-go's benchmain reports them (client and server together
// when both run in this process).
type costSnapshot struct {
	mallocs, bytes, numGC, pauseNs uint64
	cpu                            time.Duration // this process, user + system
	machine                        time.Duration // all CPUs busy (load.go)
	machineOK                      bool
	child                          time.Duration // server child's CPU (-twoproc)
	childOK                        bool
	at                             time.Time
}

func takeCost() costSnapshot {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	busy, ok := machineBusy()
	snap := costSnapshot{
		mallocs: ms.Mallocs, bytes: ms.TotalAlloc, numGC: uint64(ms.NumGC), pauseNs: ms.PauseTotalNs,
		cpu: cpu, machine: busy, machineOK: ok, at: time.Now(),
	}
	if childCPU != nil {
		snap.child, snap.childOK = childCPU()
	}
	return snap
}

// Cost is the per-operation cost of a measured window.
type Cost struct {
	AllocsPerOp float64 `json:"allocs_per_op"`
	BytesPerOp  float64 `json:"bytes_per_op"`
	CPUPerOpUS  float64 `json:"cpu_us_per_op"`
	GCs         uint64  `json:"gcs"`
	GCPauseMS   float64 `json:"gc_pause_ms"`
	// OtherCPU is the share of all CPUs busy with work outside this process
	// during the window (0..1; -1 if unknown), not counting the server
	// child of -twoproc. High values mean a noisy point.
	OtherCPU float64 `json:"other_cpu"`
	// ServerCPUPerOpUS is the server child's CPU per op (-twoproc only;
	// CPUPerOpUS is then the client's).
	ServerCPUPerOpUS float64 `json:"server_cpu_us_per_op,omitempty"`
}

func costBetween(a, b costSnapshot, ops int64) Cost {
	other := -1.0
	var child time.Duration
	if a.childOK && b.childOK {
		child = b.child - a.child
	}
	if a.machineOK && b.machineOK {
		wall := b.at.Sub(a.at).Seconds() * float64(runtime.NumCPU())
		other = max(0, (b.machine-a.machine-(b.cpu-a.cpu)-child).Seconds()/wall)
	}
	if ops <= 0 {
		return Cost{OtherCPU: other}
	}
	n := float64(ops)
	return Cost{
		OtherCPU:         other,
		ServerCPUPerOpUS: float64(child) / float64(time.Microsecond) / n,
		AllocsPerOp:      float64(b.mallocs-a.mallocs) / n,
		BytesPerOp:       float64(b.bytes-a.bytes) / n,
		CPUPerOpUS:       float64(b.cpu-a.cpu) / float64(time.Microsecond) / n,
		GCs:              b.numGC - a.numGC,
		GCPauseMS:        float64(b.pauseNs-a.pauseNs) / 1e6,
	}
}

// Latency summarises a histogram, in microseconds.
type Latency struct {
	P50US  float64 `json:"p50_us"`
	P99US  float64 `json:"p99_us"`
	P999US float64 `json:"p999_us"`
	MaxUS  float64 `json:"max_us"`
}

func latencyOf(h *hdrhistogram.Histogram) Latency {
	us := func(v int64) float64 { return float64(v) / 1e3 }
	return Latency{
		P50US:  us(h.ValueAtQuantile(50)),
		P99US:  us(h.ValueAtQuantile(99)),
		P999US: us(h.ValueAtQuantile(99.9)),
		MaxUS:  us(h.Max()),
	}
}

// EchoResult is one closed-loop echo measurement of one peer.
type EchoResult struct {
	Peer    string  `json:"peer"`
	Conc    int     `json:"conc"`
	Size    int     `json:"size"`
	Run     int     `json:"run"`
	Ops     int64   `json:"ops"`
	Errors  int64   `json:"errors"`
	Seconds float64 `json:"seconds"`
	QPS     float64 `json:"qps"`
	Latency
	Cost
	Err string `json:"err,omitempty"`
}

// randomPayload returns n random bytes (incompressible, like the peers' 1 KiB
// bodies in the published harnesses).
func randomPayload(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// runEcho drives conc goroutines, each calling c.Call in a closed loop with
// the same payload, for warmup and then dur (held longer while
// testHookWindowDone says so). Each reply's length is checked.
func runEcho(c Client, conc int, payload []byte, warmup, dur time.Duration) (EchoResult, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	rec := newLatencyRecorder()
	var (
		phase  atomic.Int32
		errs   atomic.Int64
		first  atomic.Value // first error seen
		wg     sync.WaitGroup
		size   = len(payload)
		doneCh = make(chan struct{})
	)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				start := phase.Load()
				if start == phaseStop {
					return
				}
				t0 := time.Now()
				resp, err := c.Call(ctx, payload)
				d := time.Since(t0)
				if err == nil && len(resp) != size {
					err = fmt.Errorf("echo returned %d bytes, want %d", len(resp), size)
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					errs.Add(1)
					first.CompareAndSwap(nil, err)
					if errs.Load() > 1000 {
						return
					}
					continue
				}
				if start == phaseMeasure && phase.Load() == phaseMeasure {
					rec.record(w, d)
				}
			}
		}(w)
	}
	go func() {
		wg.Wait()
		close(doneCh)
	}()

	time.Sleep(warmup)
	runtime.GC()
	c0 := takeCost()
	t0 := time.Now()
	phase.Store(phaseMeasure)
	time.Sleep(dur)
	holdWindow(rec.count) // tests only: until a call was measured
	phase.Store(phaseStop)
	elapsed := time.Since(t0)
	c1 := takeCost()

	select {
	case <-doneCh:
	case <-time.After(drainTimeout):
		cancel()
		return EchoResult{}, fmt.Errorf("calls still in flight %v after the run", drainTimeout)
	}

	h := rec.merged()
	ops := h.TotalCount()
	res := EchoResult{
		Conc:    conc,
		Size:    size,
		Ops:     ops,
		Errors:  errs.Load(),
		Seconds: elapsed.Seconds(),
		QPS:     float64(ops) / elapsed.Seconds(),
		Latency: latencyOf(h),
		Cost:    costBetween(c0, c1, ops),
	}
	if e, ok := first.Load().(error); ok {
		res.Err = e.Error()
	}
	if ops == 0 && res.Err != "" {
		return res, fmt.Errorf("no call completed: %s", res.Err)
	}
	return res, nil
}

// BulkResult is one one-way large-message measurement of one peer.
type BulkResult struct {
	Peer     string  `json:"peer"`
	Size     int     `json:"size"`
	Run      int     `json:"run"`
	Messages int64   `json:"messages"`
	Seconds  float64 `json:"seconds"`
	MBps     float64 `json:"mb_per_s"`
	Latency
	Cost
	Err string `json:"err,omitempty"`
}

// runBulk sends payload to c.Sink back to back from one goroutine, for
// warmup and then at least dur (the last message is always completed).
// Throughput is bytes delivered divided by the summed durations of the
// measured messages, so partial messages at the window edges do not skew it.
func runBulk(c Client, payload []byte, warmup, dur time.Duration) (BulkResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), warmup+dur+bulkGrace)
	defer cancel()
	h := hdrhistogram.New(histMin, histMax, histSigFigs)
	deadline := time.Now().Add(warmup)
	for time.Now().Before(deadline) {
		if err := c.Sink(ctx, payload); err != nil {
			return BulkResult{}, err
		}
	}
	runtime.GC()
	c0 := takeCost()
	var busy time.Duration
	var n int64
	for busy < dur || n < 2 {
		t0 := time.Now()
		if err := c.Sink(ctx, payload); err != nil {
			return BulkResult{}, err
		}
		d := time.Since(t0)
		busy += d
		n++
		h.RecordValue(min(int64(d), histMax))
	}
	c1 := takeCost()
	return BulkResult{
		Size:     len(payload),
		Messages: n,
		Seconds:  busy.Seconds(),
		MBps:     float64(n) * float64(len(payload)) / busy.Seconds() / 1e6,
		Latency:  latencyOf(h),
		Cost:     costBetween(c0, c1, n),
	}, nil
}
