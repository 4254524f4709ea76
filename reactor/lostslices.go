package reactor

import (
	"math/bits"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Lost slices: the signal that other processes want the CPU.
//
// A spin after small messages yields its thread at each poll
// (sched_yield), so that a thread with work (the peer's loop, the
// goroutine that sends the next request) runs at once. On a host where
// other processes keep the CPUs busy (two `yes` beside a concurrency-1
// echo on 2 vCPUs), such a yield hands the vCPU to one of them for a
// whole scheduler slice (over a millisecond under EEVDF), and the small
// message that arrives meanwhile waits for it: echo c=1 ran at about 250
// calls/s, p50 4 ms (docs/benchmarks.md, "The busy poll beside other
// processes, fifteenth session"). Blocked in epoll_wait instead, the loop
// is woken by the message: with a backoff, 40-65 times the calls.
//
// One slow yield is no signal: with nothing else running a loop's yields
// lose a slice a few dozen times in a couple of million (the process's
// own threads, kernel work), and backing off on each cost a quiet echo
// c=1 6 % ("The small-message spin's backoff on a quiet host, fifteenth
// session"). Beside busy processes 40-47 % of them do. So the loop keeps
// the outcome of its last 64 small-spin yields as bits (lostSlices: one
// word, a shift and a population count) and backs off only when a yield
// loses a slice while at least spinLostShare of those 64 did.
//
// Nor is a share of lost slices enough when the process's own threads
// took them: at high concurrency, or beside a bulk transfer of the same
// process, the goroutines' threads and the other loops keep every CPU
// busy, and a loop blocked in epoll_wait there only adds a wake-up per
// message. So while the next lost slice could start a backoff (armed:
// spinLostShare-1 of the window lost), the spin also reads the process's
// CPU time around each yield (clock_gettime, two system calls per yield,
// and only then), and a lost slice starts the backoff only if the process
// used less than all the CPUs but half a one meanwhile (foreignSlice):
// another process had some of them.
//
// The backoff skips spins after small messages for spinShareBackoff,
// blocking in epoll_wait (Stats SmallSpinBackoffs, SmallSpinsSkipped). The
// bits stay as they are meanwhile, so the first spin after the backoff
// re-checks: one more lost slice taken by another process starts the next
// backoff at once, while yields that return promptly shift the lost ones
// out, and within 64 yields of the other load's end the spin no longer
// gives way. The backoff has a fixed length (no doubling): each re-check
// costs at most one slice, one in about spinShareBackoff / slice calls.

// lostSlices holds the outcome of a loop's last 64 small-spin yields, the
// latest in bit 0: 1 if the yield lost a slice (loop-owned).
type lostSlices uint64

// armed reports whether the next lost slice makes spinLostShare of the
// window: then the spin measures the process's CPU time around the yield.
func (w lostSlices) armed() bool {
	return bits.OnesCount64(uint64(w)) >= spinLostShare-1
}

// note records a yield that took d and reports whether it lost a slice
// and, with it, at least spinLostShare of the last 64 did.
func (w *lostSlices) note(d time.Duration) bool {
	if d <= spinSliceLost {
		*w <<= 1
		return false
	}
	*w = *w<<1 | 1
	return bits.OnesCount64(uint64(*w)) >= spinLostShare
}

// foreignSlice reports whether a yield that took d, during which the
// process used own of CPU time, lost its slice at least in part to
// another process: the process used less than spinCPUs-1/2 CPUs. With
// only its own threads runnable, a loop waits a slice only while they
// keep every CPU busy (an idle CPU would take the loop).
func foreignSlice(own, d time.Duration) bool {
	return 2*own < time.Duration(2*spinCPUs-1)*d
}

// processCPU reads the process's CPU time (all threads).
func processCPU() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// spinProcessCPU is processCPU for the spin; tests replace it to play the
// process's share of a lost slice.
var spinProcessCPU = processCPU

// spinCPUs is how many CPUs the process may run on.
var spinCPUs = runtime.NumCPU()

const (
	// spinSliceLost is how long a small spin's sched_yield must take to
	// count as a lost slice: a yield that gives nothing away returns in
	// about a microsecond, one to a thread that works briefly (the peer's
	// loop) in tens; the scheduler's slice is about 1.4 ms here and
	// 0.75-3 ms in general.
	spinSliceLost = 250 * time.Microsecond
	// spinLostShare is how many of the last 64 small-spin yields must have
	// lost a slice for a lost one to start a backoff: a quarter. Measured
	// on the shared 2-vCPU host (docs/benchmarks.md, "The small-message
	// spin beside other processes, sixteenth session"): beside two `yes`
	// 40 % of yields lost a slice and nearly every lost one found 16 or
	// more in its window; a quiet echo c=1 never found 4.
	spinLostShare = 16
	// spinShareBackoff is how long a loop skips spins after small messages
	// once the share of lost slices is reached.
	spinShareBackoff = 8 * time.Millisecond
)
