package reactor

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Busy polling.
//
// A gnet loop that has nothing to do blocks in epoll_wait, and waking its
// thread again costs tens of microseconds on a virtual machine whose vCPU
// went idle (measured here: a 1 KiB request/response at concurrency 1 took
// about 68 µs per round trip, against 4 µs for a goroutine-per-connection
// ping-pong, whose runtime spins before it sleeps). gnet offers no hook to
// spin before blocking, so the reactor does it itself: after a loop has
// handled traffic or a wake-up it keeps polling, without blocking, a private
// epoll set that holds the loop's connections, for at most Config.BusyPoll.
// The spin ends as soon as any of the loop's connections is readable, any
// task is submitted to any loop of the reactor (Execute, Wake, Send, timers),
// or the budget runs out; gnet then handles what arrived at once, with the
// loop's thread still running. With the budget at 50 µs the same round trip
// took about 12 µs. The cost is CPU time: up to BusyPoll after each burst of
// activity on a loop. The spin yields as it goes, its P to the Go
// scheduler and its thread to the kernel (sched_yield), so that on a busy
// machine it delays the goroutines and threads that have work as little as
// it can.
//
// Spinning pays when the next event is a small message someone waits for.
// After a bulk transfer (spinBulkBytes or more read or written since the
// loop last spun on connections whose owner has said a large message is
// under way, Conn.SetBulk: a stream field, a large value, relayed bulk;
// never a read full of small requests, which someone waits for) the next
// readiness comes with the kernel's next batch anyway, and on a machine
// with as many runnable threads as vCPUs the spin takes the CPU that the
// peer's loop, another process or the application's goroutines need. Such
// a bulk spin therefore watches its own yields: when one iteration took
// more than spinContended (a yield gave the CPU or the P to someone else
// for that long), or, after a transfer on an interleaved connection
// (SetInterleaved: small messages beside the large one), its sched_yield
// alone did (timed from the first iteration on: a loop that gave its vCPU
// to another process's thread there stayed runnable behind it for tens of
// microseconds while a small message waited in its socket; blocked in
// epoll_wait, the message's arrival wakes it), the CPU is contended; the
// spin ends and the loop skips bulk spins for spinBackoff, blocking in
// epoll_wait instead (Stats SpinBackoffs, SpinsSkipped; docs/benchmarks.md,
// "Head-of-line at c=1, tenth session"). On an idle machine the yields
// return at once and the bulk spin stays: there it keeps a stream's
// receiver on its CPU between the sender's batches, which costs less CPU
// per byte than a wake-up (docs/benchmarks.md, "Polling while bytes stream
// (sixth session)"). Spins after small messages never back off: the yield
// of a concurrency-1 call's loop to the peer that produces the next
// request is the point of yielding, not contention.
//
// A bulk spin after a read of a bulk connection that is not interleaved
// (no small messages beside the large one; Conn.readAfter) also gathers:
// while only that socket is ready and it holds fewer than spinGatherBytes
// (or a quarter of its receive buffer, gatherLimit), the spin goes on
// polling instead of ending, so that gnet reads one larger piece when it
// ends. A receiver faster than its sender otherwise reads each 64 KiB
// loopback segment as it arrives: one read, one window update, one packet
// cut by the read (copied by ipc) and one spin per segment, where a raw
// TCP receiver woken by the netpoller reads about three
// (docs/benchmarks.md, "Stream fields, seventh session"). The budget still
// bounds the wait: the spin ends when BusyPoll has passed since it began,
// and gnet then reads what has arrived.

// spinInit creates the loop's private epoll set, if busy polling is on. It
// runs on the loop.
func (l *Loop) spinInit() {
	if l.r.cfg.BusyPoll <= 0 {
		return
	}
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		l.r.log.Warn("reactor: busy polling disabled", "err", err)
		return
	}
	l.epfd = fd
	l.spinEvents = make([]unix.EpollEvent, 8)
}

// spinAdd adds a connection's socket to the loop's epoll set (loop-only).
func (l *Loop) spinAdd(fd int) {
	if l.epfd <= 0 || fd <= 0 {
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
}

// spinDel removes a socket before gnet closes it (loop-only).
func (l *Loop) spinDel(fd int) {
	if l.epfd <= 0 || fd <= 0 {
		return
	}
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// spinOnLoop polls the loop's sockets without blocking until one is
// readable, a task is submitted (the reactor's task count moves past seen,
// read before the handler ran), or BusyPoll has passed (loop-only). Wakes
// of the loop's connections arriving meanwhile are handed to the spin
// (handOff) and run here, without a trip through gnet's task queue and its
// eventfd; each one restarts the budget. A spin after a bulk transfer ends
// early when the CPU is contended, and is skipped during the backoff that
// follows (see above).
func (l *Loop) spinOnLoop(seen uint64) {
	if l.epfd <= 0 || len(l.conns) == 0 || l.inSpin {
		return
	}
	bulk := l.moved >= spinBulkBytes
	beside := bulk && l.besideMoved
	l.moved, l.besideMoved = 0, false
	gather := l.gather
	l.gather = nil
	if !bulk || gather == nil || gather.dead || gather.interleaved {
		gather = nil
	}
	now := spinNow()
	if bulk && now.Before(l.backoffUntil) {
		l.r.stats.spinsSkipped.Add(1)
		l.spinEnded(spinSkipped)
		return
	}
	l.inSpin = true
	l.spinMu.Lock()
	l.spinning = true
	l.spinMu.Unlock()
	budget := l.r.cfg.BusyPoll
	deadline := now.Add(budget)
	end := spinTask
	for i := 1; l.r.tasks.Load() == seen; i++ {
		if l.handed.Load() > 0 && l.runHandedOff() {
			now = spinNow()
			deadline = now.Add(budget)
			i = 1 // the hand-off's work is not a yield: measure afresh
		}
		n, err := unix.EpollWait(l.epfd, l.spinEvents, 0)
		ready := n > 0 && !l.gatherMore(gather, n)
		if ready && l.readIntoSpin(gather, n) {
			// A direct read still asked for took the input (readinto.go):
			// the spin goes on, measured afresh as after a hand-off.
			now = spinNow()
			deadline = now.Add(budget)
			i = 0
			continue
		}
		if ready || (err != nil && err != unix.EINTR) {
			end = spinReady
			break
		}
		prev := now
		now = spinNow()
		if now.After(deadline) {
			if l.readIntoSpin(gather, 0) { // the input gathered so far
				now = spinNow()
				deadline = now.Add(budget)
				i = 0
				continue
			}
			end = spinBudget
			break
		}
		// The iteration since prev polled once and yielded (the P, the
		// thread): if that took long, others had work for this CPU. The
		// first iteration is not counted: its Gosched runs the goroutine
		// the handler has just woken, on purpose.
		if bulk && i > 2 && now.Sub(prev) > spinContended {
			l.backoffUntil = now.Add(spinBackoff)
			l.r.stats.spinBackoffs.Add(1)
			end = spinContendedEnd
			break
		}
		// Let goroutines waiting for a P run meanwhile (the application's
		// goroutine that will send the next request, say): the loop's
		// thread keeps the vCPU busy without holding the P. The first
		// yield comes at once: a goroutine the handler has just woken (a
		// Call's caller, readied into this P's runnext) runs now instead
		// of after spinYieldEvery polls (go tool trace, c=1 Call: its
		// scheduling delay went from 12-13 µs to 2-3 µs per call).
		if i == 1 || i%spinYieldEvery == 0 {
			runtime.Gosched()
		}
		// And let other threads have the vCPU (sched_yield): on a busy
		// machine the thread that would send the next packet (the peer's
		// loop, another process) runs instead of waiting for this spin's
		// time slice to end; on an idle one the call returns at once.
		// Measured (BenchmarkCallHops, c=1 Call, loaded 2-vCPU machine,
		// alternating runs): 155/157/96 µs per call without, 113/76/50 with.
		if !beside {
			spinOSYield()
			continue
		}
		// A bulk spin beside small messages times its sched_yield
		// alone, from the first iteration on: one that kept the vCPU
		// away longer than spinContended says the CPU is contended
		// just as a long iteration does, and the loop is better off
		// blocked in epoll_wait, from which a small message's arrival
		// wakes it, than runnable behind the thread it yielded to (see
		// above).
		y := spinNow()
		spinOSYield()
		if y1 := spinNow(); y1.Sub(y) > spinContended {
			l.backoffUntil = y1.Add(spinBackoff)
			l.r.stats.spinBackoffs.Add(1)
			end = spinContendedEnd
			break
		}
	}
	l.spinMu.Lock()
	l.spinning = false
	l.spinMu.Unlock()
	l.runHandedOff()
	l.inSpin = false
	l.spinEnded(end)
}

// gatherMore reports whether a bulk spin should keep polling although n
// sockets are ready (loop-only): only gather's socket is, it has input and
// nothing else (no hang-up or error), and fewer than spinGatherBytes of it
// are queued. Then the loop reads a larger piece later (by the time the
// budget runs out at the latest) instead of each segment as it arrives.
func (l *Loop) gatherMore(gather *Conn, n int) bool {
	if gather == nil || gather.dead {
		return false
	}
	for _, ev := range l.spinEvents[:n] {
		if ev.Fd != int32(gather.fd) || ev.Events != unix.EPOLLIN {
			return false
		}
	}
	if gather != l.gatherConn {
		l.gatherConn, l.gatherLimit = gather, gatherLimit(gather.fd)
	}
	q, err := unix.IoctlGetInt(gather.fd, unix.SIOCINQ)
	if err != nil || q >= l.gatherLimit {
		return false
	}
	if testHookGather != nil {
		testHookGather(q)
	}
	return true
}

// gatherLimit is how many queued bytes end a gathering spin on socket fd:
// spinGatherBytes, or a quarter of the socket's receive buffer if that is
// less (the kernel reports twice the SO_RCVBUF set, and advertises a
// window of about half of it), so that the peer can go on sending while
// the spin waits for that much.
func gatherLimit(fd int) int {
	th := spinGatherBytes
	if n, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil {
		th = min(th, n/4)
	}
	return th
}

// testHookGather, if set by a test before the reactor starts, runs on the
// loop each time a spin keeps polling to gather more input, with the bytes
// queued on the socket.
var testHookGather func(queued int)

// How a spin ended (testHookSpin).
const (
	spinReady        = iota // a socket was readable
	spinTask                // a task was submitted
	spinBudget              // BusyPoll passed
	spinContendedEnd        // a bulk spin found the CPU contended
	spinSkipped             // a bulk spin was skipped during a backoff
)

// testHookSpin, if set by a test before the reactor starts, runs on the
// loop at the end of each spin with how it ended.
var testHookSpin func(l *Loop, end int)

func (l *Loop) spinEnded(end int) {
	if testHookSpin != nil {
		testHookSpin(l, end)
	}
}

// handOff gives c's wake to the loop if it is busy polling (any goroutine).
func (l *Loop) handOff(c *Conn) bool {
	l.spinMu.Lock()
	if !l.spinning {
		l.spinMu.Unlock()
		return false
	}
	l.spinWakes = append(l.spinWakes, c)
	l.handed.Add(1)
	l.spinMu.Unlock()
	return true
}

// runHandedOff runs the wakes handed to the spin (loop-only) and reports
// whether there were any.
func (l *Loop) runHandedOff() bool {
	l.spinMu.Lock()
	list := l.spinWakes
	l.spinWakes = l.spinSpare[:0]
	l.handed.Store(0)
	l.spinMu.Unlock()
	for i, c := range list {
		list[i] = nil
		if !c.dead {
			c.wakeOnLoopSpin(false)
		} else {
			c.wake.Store(wakeIdle)
		}
	}
	l.spinSpare = list[:0]
	return len(list) > 0
}

// osYield gives up the thread's CPU to other runnable threads, if any.
func osYield() { _, _, _ = unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }

// spinOSYield is the spin's sched_yield; tests replace it to play a yield
// that gave the vCPU away.
var spinOSYield = osYield

// spinNow reads the system clock for the spin; tests replace it to play a
// contended CPU.
var spinNow = time.Now

const (
	// spinGatherBytes is how many bytes of its input a bulk connection's
	// socket must hold before a spin after its read ends for it (gatherMore):
	// two 64 KiB loopback segments, well within the window of the
	// loopback receive buffer ipc sets (256 KiB).
	spinGatherBytes = 128 << 10

	// spinYieldEvery is how many polls a spin makes between yields of its P.
	spinYieldEvery = 16
	// spinBulkBytes is how many bytes of bulk connections (SetBulk) a loop
	// must have read or written since its last spin for the next one to be
	// a bulk spin.
	spinBulkBytes = 32 << 10
	// spinContended is the longest one iteration of a bulk spin (a poll
	// and its yields) may take before the spin counts the CPU as
	// contended: a poll and a yield that gives nothing away take about a
	// microsecond; a yield to a goroutine or thread that works takes as
	// long as that work.
	spinContended = 20 * time.Microsecond
	// spinBackoff is how long a loop skips bulk spins after one found the
	// CPU contended.
	spinBackoff = time.Millisecond
)

// spinClose releases the epoll set once the loop has exited.
func (l *Loop) spinClose() {
	if l.epfd > 0 {
		_ = unix.Close(l.epfd)
		l.epfd = 0
	}
}

// spinState is the busy-poll hand-off state of a Loop.
type spinState struct {
	inSpin    bool // loop-owned: a spin is running (no nesting)
	spinMu    sync.Mutex
	spinning  bool    // guarded by spinMu: wakes may be handed off
	spinWakes []*Conn // guarded by spinMu
	spinSpare []*Conn // loop-owned second buffer
	handed    atomic.Int32
	// loop-owned: bytes of bulk connections read or written since the
	// last spin (yieldAfter); besideMoved: some of them on an interleaved
	// connection (small messages beside the large one)
	moved       int
	besideMoved bool
	// loop-owned: bulk spins are skipped until then (a bulk spin found the
	// CPU contended)
	backoffUntil time.Time
	// loop-owned: the bulk connection read last since the last spin, whose
	// input the next bulk spin gathers (readAfter, gatherMore); nil if none
	gather *Conn
	// loop-owned: the connection gatherMore last checked and its
	// gatherLimit (read once per connection: the receive buffer only grows
	// after the first gathering spin, by autotuning or ipc)
	gatherConn  *Conn
	gatherLimit int
}
