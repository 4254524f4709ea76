package reactor

import (
	"runtime"
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
// activity on a loop.

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
// read before the handler ran), or BusyPoll has passed (loop-only).
func (l *Loop) spinOnLoop(seen uint64) {
	if l.epfd <= 0 || len(l.conns) == 0 {
		return
	}
	deadline := time.Now().Add(l.r.cfg.BusyPoll)
	for i := 1; l.r.tasks.Load() == seen; i++ {
		n, err := unix.EpollWait(l.epfd, l.spinEvents, 0)
		if n > 0 || (err != nil && err != unix.EINTR) {
			return
		}
		if time.Now().After(deadline) {
			return
		}
		// Let goroutines waiting for a P run meanwhile (the application's
		// goroutine that will send the next request, say): the loop's
		// thread keeps the vCPU busy without holding the P.
		if i%spinYieldEvery == 0 {
			runtime.Gosched()
		}
	}
}

// spinYieldEvery is how many polls a spin makes between yields of its P.
const spinYieldEvery = 16

// spinClose releases the epoll set once the loop has exited.
func (l *Loop) spinClose() {
	if l.epfd > 0 {
		_ = unix.Close(l.epfd)
		l.epfd = 0
	}
}
