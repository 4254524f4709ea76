package main

import (
	"fmt"
	"runtime/metrics"
	"time"

	"github.com/ipcframe/ipcframe/buffers"
)

// What a measured window of -mode bulk or -mode stream cost, beside its
// rate, so that a slow round can be told apart from a fast one (docs/
// benchmarks.md, "bench bulk and the lone plain message, fifteenth
// session"): the CPU time of the processes per GB moved, the minor page
// faults per message and how many of them buffers.Prefault took (this
// process only: with -twoproc the server's are not seen), and the GC
// cycles per message (this process). The raw TCP reference gets its CPU
// per GB too.

// windowMeter is a window's start: the counters windowCost subtracts.
type windowMeter struct {
	pids     []int
	at       time.Time
	cpu      time.Duration // utime+stime of pids
	faults   int64         // minor faults of pids
	prefault uint64
	gcs      uint64
}

// windowCost is what a window cost.
type windowCost struct {
	elapsed         time.Duration
	cpu             time.Duration
	faults          int64
	prefaultedPages uint64
	gcs             uint64
}

// startWindowMeter reads the counters of the processes pids.
func startWindowMeter(pids []int) windowMeter {
	return windowMeter{pids: pids, at: time.Now(), cpu: sumCPU(pids), faults: sumFaults(pids),
		prefault: buffers.PrefaultStats().Pages, gcs: gcCycles()}
}

// cost returns what happened since m.
func (m windowMeter) cost() windowCost {
	return windowCost{
		elapsed:         time.Since(m.at),
		cpu:             sumCPU(m.pids) - m.cpu,
		faults:          sumFaults(m.pids) - m.faults,
		prefaultedPages: buffers.PrefaultStats().Pages - m.prefault,
		gcs:             gcCycles() - m.gcs,
	}
}

// cpuPerGB is the CPU time in milliseconds per 10^9 bytes at rate MB/s
// (10^6 bytes) over the window.
func (c windowCost) cpuPerGB(rate float64) float64 {
	gb := rate * c.elapsed.Seconds() / 1e3
	if gb <= 0 {
		return 0
	}
	return float64(c.cpu.Milliseconds()) / gb
}

// perMessage formats the window's faults and GC cycles per message of size
// bytes at rate MB/s.
func (c windowCost) perMessage(rate float64, size int64) string {
	msgs := rate * 1e6 * c.elapsed.Seconds() / float64(size)
	if msgs <= 0 {
		return "no message"
	}
	return fmt.Sprintf("%.0f messages, %.0f faults per message (%.0f of them prefaulted), %.2f GC cycles per message",
		msgs, float64(c.faults)/msgs, float64(c.prefaultedPages)/msgs, float64(c.gcs)/msgs)
}

// sumCPU adds up the user and system CPU time of the processes pids
// (childCPU: 1/100 s steps).
func sumCPU(pids []int) time.Duration {
	var d time.Duration
	for _, pid := range pids {
		if c, err := childCPU(pid); err == nil {
			d += c
		}
	}
	return d
}

// gcCycles returns the GC cycles this process has completed.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
