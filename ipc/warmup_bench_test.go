package ipc_test

import (
	"flag"
	"os"
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
// their pages (at most warmMaxMessages), and the benchmarks report the
// faults left in the timed region as faults/op.
const (
	warmFaultShare  = 16 // a message is warm below pages/warmFaultShare faults
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
// row fault in fewer than msgSize/pagesize/warmFaultShare pages, at most
// *warmMax times (warmMaxMessages unless the flag says otherwise), and
// returns the number of calls made.
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
		if calm == 2 {
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
