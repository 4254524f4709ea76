package ipc_test

import (
	"flag"
	"os"
	"runtime/metrics"
	"syscall"
	"testing"
)

// Heap warm-up of the one-way 64 MiB benchmarks (ipcframe's and their std
// references alike).
//
// A plain 64 MiB message decodes into a fresh array. Until the heap has
// grown to the size the GC keeps in steady state (a few such arrays live
// at once, its goal about twice that), every new array is memory the
// process has never touched: the kernel faults in each of its 16,384 pages
// (a zeroed page per fault, on the receiving loop), which costs about as
// much as the copy the benchmark measures. How many messages that takes
// depends on when the GC's cycles fall, so without a warm-up some runs
// (10 messages) paid for the growth inside the timed region and ran at
// half speed with twice the CPU per GB. The warm-up sends messages before
// b.ResetTimer until two in a row fault in fewer than warmFaultShare of
// their pages, and at least warmMinMessages (at most warmMaxMessages), and
// the benchmarks report the faults left in the timed region as faults/op.
//
// warmMinMessages is the fifteenth session's: two calm messages alone
// ended most warm-ups of BenchmarkOneWay64MiBPlain after two messages,
// before the heap had its full size (the GC's goal is higher after a mark
// that finds two values live than one, which a short warm-up may not have
// met), and 16 of 18 such runs then grew the heap by a whole array inside
// the timed region (grow-MB/op 6.4 over 10 messages: about 1,600
// faults/op); none of the runs that warmed for 6 or 7 messages did
// (docs/benchmarks.md, "bench bulk and the lone plain message, fifteenth
// session"). Ending only once a GC cycle ended within the calm messages
// did not help.
const (
	warmFaultShare  = 16 // a message is warm below pages/warmFaultShare faults
	warmMinMessages = 8  // warm-up messages at least
	warmMaxMessages = 16 // warm-up messages at most
)

// warmMax bounds the warm-up; -oneway.warmmax=1 sends one message before
// the timer as the benchmarks did before the warm-up (the connection's
// set-up only), to measure what the warm-up changes in the same binary.
var warmMax = flag.Int("oneway.warmmax", warmMaxMessages, "one-way 64 MiB benchmarks: warm-up messages at most (1: set-up only)")

// minorFaults returns the process's minor page faults so far (getrusage
// ru_minflt).
func minorFaults() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Minflt
}

// warmHeap calls one (one message sent and received) until two calls in a
// row fault in fewer than msgSize/pagesize/warmFaultShare pages and it
// made at least warmMinMessages, at most *warmMax times (warmMaxMessages
// unless the flag says otherwise), and returns the number of calls made.
func warmHeap(b *testing.B, msgSize int, one func()) int {
	b.Helper()
	limit := int64(msgSize / os.Getpagesize() / warmFaultShare)
	calm := 0
	for n := 1; n <= *warmMax; n++ {
		f0 := minorFaults()
		one()
		if minorFaults()-f0 < limit {
			calm++
		} else {
			calm = 0
		}
		if calm >= 2 && n >= min(warmMinMessages, *warmMax) {
			return n
		}
	}
	return *warmMax
}

// faultMeter reports the minor page faults of the timed region per op.
type faultMeter struct{ f0 int64 }

func startFaultMeter() faultMeter { return faultMeter{f0: minorFaults()} }

func (m faultMeter) report(b *testing.B) {
	b.ReportMetric(float64(minorFaults()-m.f0)/float64(b.N), "faults/op")
}

// heapGauges reads the runtime/metrics samples the fault benchmarks watch.
type heapGauges struct{ s []metrics.Sample }

func newHeapGauges() heapGauges {
	return heapGauges{[]metrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
	}}
}

// heapState is one reading of heapGauges: GC cycles so far, heap bytes
// released to the OS, free (held, not released), and mapped (all heap
// address space the runtime has taken from the OS, released included:
// it only grows).
type heapState struct{ cycles, released, free, mapped uint64 }

func (g heapGauges) read() heapState {
	metrics.Read(g.s)
	var mapped uint64
	for _, s := range g.s[1:] {
		mapped += s.Value.Uint64()
	}
	return heapState{g.s[0].Value.Uint64(), g.s[1].Value.Uint64(), g.s[2].Value.Uint64(), mapped}
}

// heapMeter reports what the heap did in a timed region: GC cycles per op
// (gcs/op), heap address space newly mapped per op (grow-MB/op: each of its
// pages faults when first written) and the bytes released to the OS at the
// region's end (released-MB: a page the runtime released faults again when
// an array reuses it).
type heapMeter struct {
	g  heapGauges
	h0 heapState
}

func startHeapMeter() heapMeter {
	g := newHeapGauges()
	return heapMeter{g, g.read()}
}

func (m heapMeter) report(b *testing.B) {
	h := m.g.read()
	b.ReportMetric(float64(h.cycles-m.h0.cycles)/float64(b.N), "gcs/op")
	b.ReportMetric(float64(h.mapped-m.h0.mapped)/float64(b.N)/(1<<20), "grow-MB/op")
	b.ReportMetric(float64(h.released)/(1<<20), "released-MB")
}

var freshSink []byte

// BenchmarkFreshArray64MiB is the plain one-way benchmark's allocation
// pattern without ipc: a 64 MiB payload stays live (the sender's), and each
// op makes a new 64 MiB array, copies the payload into it and drops the
// previous one (the handler's message). It reports the minor faults per op
// (faults/op) and what the heap did (heapMeter), to show whether the bare
// runtime faults as the engine's receiver does, and why.
func BenchmarkFreshArray64MiB(b *testing.B) {
	const size = 64 << 20
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i)
	}
	one := func() {
		a := make([]byte, size)
		copy(a, payload)
		freshSink = a
	}
	warm := warmHeap(b, size, one)
	f := startFaultMeter()
	hm := startHeapMeter()
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		one()
	}
	b.StopTimer()
	f.report(b)
	hm.report(b)
	b.ReportMetric(float64(warm), "warm-msgs")
	freshSink = nil
}
