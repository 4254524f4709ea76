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
// eventfd; each one restarts the budget.
func (l *Loop) spinOnLoop(seen uint64) {
	if l.epfd <= 0 || len(l.conns) == 0 || l.inSpin {
		return
	}
	l.inSpin = true
	l.spinMu.Lock()
	l.spinning = true
	l.spinMu.Unlock()
	deadline := time.Now().Add(l.r.cfg.BusyPoll)
	for i := 1; l.r.tasks.Load() == seen; i++ {
		if l.handed.Load() > 0 && l.runHandedOff() {
			deadline = time.Now().Add(l.r.cfg.BusyPoll)
		}
		n, err := unix.EpollWait(l.epfd, l.spinEvents, 0)
		if n > 0 || (err != nil && err != unix.EINTR) {
			break
		}
		if time.Now().After(deadline) {
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
		osYield()
	}
	l.spinMu.Lock()
	l.spinning = false
	l.spinMu.Unlock()
	l.runHandedOff()
	l.inSpin = false
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
			c.woken.Store(false)
		}
	}
	l.spinSpare = list[:0]
	return len(list) > 0
}

// osYield gives up the thread's CPU to other runnable threads, if any.
func osYield() { _, _, _ = unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }

// spinYieldEvery is how many polls a spin makes between yields of its P.
const spinYieldEvery = 16

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
}
