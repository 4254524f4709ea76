package buffers

import "sync/atomic"

// Prefaulting large arrays (issue 8, docs/benchmarks.md "The plain 64 MiB
// message and its page faults, fourteenth session").
//
// A plain 64 MiB message decodes into a fresh array, and some of its pages
// are new to the process each time (heap growth, pages the runtime's
// scavenger gave back to the kernel): the first write to each faults.
// Taken by the event loop in its readv, those faults stall every
// connection of the loop, and on a paravirtualized guest each costs a trap
// into the guest kernel plus the hypervisor's shadow page-table fill. Prefault makes
// those pages present ahead of the reads, on a goroutine of its own: it
// asks the kernel which pages are missing (mincore), populates them in
// one call per run of missing pages (MADV_POPULATE_WRITE, Linux 5.14 and
// later: no trap per page), and then has the kernel read one byte of each
// (writev to a pipe), which fills the mapping the kernel's own copies use
// on hosts that keep one apart from user mode's. It changes no byte of
// the array: populated pages read as the zeros the kernel maps, and the
// kernel's touch only reads. Present pages are skipped.

// PrefaultMin is the smallest array Prefault works on: below it the
// goroutine and the system calls cost more than the faults it saves.
const PrefaultMin = 1 << 20

// prefaultJobs bounds the arrays being prefaulted at once, over the process:
// one per large value under way on a receiving connection, as cmd/bench
// -mode bulk keeps two; more would only compete for the CPUs with the loops
// they are meant to spare. An array that finds no free job is not
// prefaulted (its pages fault where they are first written, as without
// Prefault).
const prefaultJobs = 2

// prefaultRunning counts the jobs running; prefaultOff is set when the
// kernel refuses MADV_POPULATE_WRITE (before Linux 5.14), and Prefault then
// does nothing.
var (
	prefaultRunning atomic.Int32
	prefaultOff     atomic.Bool
)

// prefaultAsked, prefaultArrays and prefaultPages are PrefaultCounts'
// counters.
var prefaultAsked, prefaultArrays, prefaultPages atomic.Uint64

// PrefaultCounts are Prefault's counters since the process started.
type PrefaultCounts struct {
	// Asked counts the arrays of PrefaultMin or more handed to Prefault
	// while it could populate pages, whether or not a job was free.
	Asked uint64
	// Arrays counts those a job started on.
	Arrays uint64
	// Pages counts the pages the jobs populated: the faults they took off
	// the writers of those arrays (the process's minor faults count them
	// too).
	Pages uint64
}

// PrefaultStats returns Prefault's counters.
func PrefaultStats() PrefaultCounts {
	return PrefaultCounts{Asked: prefaultAsked.Load(), Arrays: prefaultArrays.Load(), Pages: prefaultPages.Load()}
}

// prefaultDone, when set (by tests, before any Prefault), is called at the
// end of each job.
var prefaultDone func()

// Prefault starts making the pages of b's array (up to its capacity)
// present, on a goroutine of its own, and reports whether it started. It
// does nothing for an array shorter than PrefaultMin, while prefaultJobs
// arrays are being prefaulted, or where the system has no way to populate
// pages (non-Linux systems, kernels before 5.14). b's contents are left as
// they are, so b may be written (by the caller or the kernel) while the
// goroutine runs; it keeps b's array alive until it is done.
func Prefault(b []byte) bool {
	b = b[:cap(b)]
	if len(b) < PrefaultMin || prefaultOff.Load() {
		return false
	}
	prefaultAsked.Add(1)
	if prefaultRunning.Add(1) > prefaultJobs {
		prefaultRunning.Add(-1)
		return false
	}
	prefaultArrays.Add(1)
	go func() {
		prefault(b)
		prefaultRunning.Add(-1)
		if prefaultDone != nil {
			prefaultDone()
		}
	}()
	return true
}
