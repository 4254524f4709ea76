package reactor

import (
	"context"
	"net"
	"sync"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Prompt resumption of stalled connections.
//
// gnet has no callback for "the socket drained": it writes its outbound
// buffer on EPOLLOUT and says nothing. The stalled set's recheck timer
// (StallPoll, 1 ms) alone would cap a connection at about
// (HighWater − LowWater) per millisecond, which forces a large HighWater,
// and every byte below the writer is a byte a newly queued small message
// waits behind (head-of-line blocking). So when a connection stops being
// writable the reactor also arms a one-shot EPOLLOUT for its socket in a
// private epoll set watched by one goroutine per reactor (started on first
// use). With TCP_NOTSENT_LOWAT set on the socket (Config.NotSentLowat) the
// kernel reports it writable as soon as its unsent bytes fall below that
// mark; the goroutine then runs the loop's recheck at once (recheckNow),
// which resumes the connections that drained to LowWater and re-arms those
// still above it. The StallPoll timer stays as the fallback.

// writePoller watches stalled sockets for writability.
type writePoller struct {
	once sync.Once
	epfd int // -1 if unavailable (the timer alone then resumes)
	efd  int // eventfd that stops the goroutine

	mu    sync.Mutex
	conns map[int32]*Conn // guarded by mu: armed sockets by fd
	done  chan struct{}   // closed when the goroutine exits; nil if never started
}

// arm asks for one recheck of c's loop when c's socket becomes writable
// (loop-only). Arming an armed socket again is harmless.
func (w *writePoller) arm(c *Conn) {
	w.once.Do(w.start)
	if w.epfd < 0 || c.fd <= 0 || c.dead {
		return
	}
	w.mu.Lock()
	w.conns[int32(c.fd)] = c
	w.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLONESHOT, Fd: int32(c.fd)}
	op := unix.EPOLL_CTL_MOD
	if !c.wpAdded {
		op = unix.EPOLL_CTL_ADD
	}
	if err := unix.EpollCtl(w.epfd, op, c.fd, &ev); err != nil && op == unix.EPOLL_CTL_ADD {
		_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev)
	}
	c.wpAdded = true
}

// forget drops c once its socket is closed (loop-only). Closing the socket
// removed it from the epoll set; the fd number may already belong to
// another socket, so it is not touched.
func (w *writePoller) forget(c *Conn) {
	if !c.wpAdded {
		return
	}
	c.wpAdded = false
	w.mu.Lock()
	if w.conns[int32(c.fd)] == c {
		delete(w.conns, int32(c.fd))
	}
	w.mu.Unlock()
}

func (w *writePoller) start() {
	w.epfd, w.efd = -1, -1
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(efd)
		return
	}
	w.epfd, w.efd = epfd, efd
	w.conns = make(map[int32]*Conn)
	w.mu.Lock()
	w.done = make(chan struct{})
	w.mu.Unlock()
	go w.run()
}

// run waits for armed sockets to become writable and runs their loops'
// recheck.
func (w *writePoller) run() {
	defer close(w.done)
	events := make([]unix.EpollEvent, 16)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == int32(w.efd) {
				return
			}
			w.mu.Lock()
			c := w.conns[ev.Fd]
			w.mu.Unlock()
			if c != nil {
				_ = c.r.execute(c.el, c.writableTask)
			}
		}
	}
}

// stop ends the goroutine, if it was started, and releases the epoll set.
func (w *writePoller) stop() {
	w.once.Do(func() { w.epfd, w.efd = -1, -1 }) // never started: never will be
	w.mu.Lock()
	done := w.done
	w.mu.Unlock()
	if done == nil {
		return
	}
	var one = [8]byte{1}
	_, _ = unix.Write(w.efd, one[:])
	<-done
	_ = unix.Close(w.epfd)
	_ = unix.Close(w.efd)
	w.epfd, w.efd = -1, -1
}

// newWritableTask returns the task the write poller runs on c's loop.
func newWritableTask(c *Conn) gnet.Runnable {
	return gnet.RunnableFunc(func(context.Context) error {
		if !c.dead && c.loop != nil {
			c.loop.recheckNowOnLoop()
		}
		return nil
	})
}

// recheckNowOnLoop runs the stalled set's recheck at once instead of at its
// timer, then re-arms the write poller for the connections still stalled.
func (l *Loop) recheckNowOnLoop() {
	if l.stallTimer != nil {
		l.stallTimer.Stop()
		l.stallTimer = nil
	}
	l.recheckOnLoop()
	for _, c := range l.stalled {
		if c.wantWritable && !c.dead {
			l.r.wp.arm(c)
		}
	}
}

// setNotSentLowat limits the bytes the kernel holds unsent for fd.
func setNotSentLowat(fd, n int) {
	if n > 0 && fd > 0 {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, n)
	}
}

// setRecvBuffer fixes fd's receive buffer (SO_RCVBUF) to n bytes, turning
// off the kernel's autotuning, when n > 0.
func setRecvBuffer(fd, n int) {
	if n > 0 && fd > 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, n)
	}
}

// hostOf returns the host part of a "host:port" address.
func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}
