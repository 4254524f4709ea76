package reactor

import (
	"context"
	"reflect"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/ipcframe/ipcframe/internal/clock"
)

// Loop is one event loop: a goroutine owned by gnet that runs the Handler
// methods, Execute functions and timers of its connections, one at a time.
//
// Besides gnet's loop it holds the loop-owned state the reactor adds: the
// loop's timers (timer.go), the set of stalled connections and the open
// connections (for Stop). Only Execute is safe from other goroutines; all
// other methods are loop-only.
type Loop struct {
	// immutable
	r            *Reactor
	el           gnet.EventLoop
	closeAllTask gnet.Runnable // runs closeAllOnLoop (Stop)
	recheckFn    func()        // runs recheckOnLoop

	// loop-owned
	conns      map[*Conn]struct{} // open connections
	stalled    []*Conn            // connections waiting for gnet's buffer to drain
	spare      []*Conn            // recheck's second buffer for stalled
	stallTimer *Timer             // pending recheck, nil if none
	timers     timerSet           // AfterFunc's, on Config.Clock
	polls      timerSet           // the stall recheck's, on the system clock
	spinState
	epfd       int               // busy polling's private epoll set; 0 if off
	spinEvents []unix.EpollEvent // EpollWait output for spinOnLoop
	tlsPlain   []byte            // TLS decrypt buffer shared by the loop's connections (tls.go)
	// Deferred wakes (rewake.go).
	deferred      []*Conn       // wakes held until gnet has polled
	chained       int           // wakes asked for during OnWake since gnet last polled
	deferSpare    []*Conn       // runDeferred's second buffer
	deferTimer    *Timer        // the StallPoll fallback, nil if none
	runDeferredFn func()        // runs runDeferred
	peek          []unix.PollFd // inputPending's poll(2) argument, reused
	value         any           // the Handler's per-loop state (Value, SetValue)

	// gnet's read buffer (readinto.go, ShortenNextRead): the loop's
	// buffer, found by reflection on first use (readBufTried), and whether
	// its length is cut (ShortenNextRead) until the next OnTraffic.
	readBuf      *[]byte
	readBufTried bool
	readShort    bool

	// TLS write staging (tls.go, tlsWriteOnLoop): one record's plaintext
	// gathered from the pieces of a Write, shared by the loop's connections.
	tlsStage     []byte
	tlsStageBusy bool // tlsStage is in use by a tlsWriteOnLoop under way
}

func newLoop(r *Reactor, el gnet.EventLoop) *Loop {
	l := &Loop{r: r, el: el, conns: make(map[*Conn]struct{})}
	l.timers.init(l, r.cfg.Clock)
	l.polls.init(l, clock.Real())
	l.closeAllTask = gnet.RunnableFunc(func(context.Context) error { l.closeAllOnLoop(); return nil })
	l.recheckFn = l.recheckOnLoop
	l.runDeferredFn = l.runDeferred
	l.spinInit()
	return l
}

// Execute runs fn on the loop, from any goroutine. Unlike Conn.Execute it is
// not ordered with any connection's queue and allocates per call. It returns
// ErrStopped once the reactor is stopping its engine.
func (l *Loop) Execute(fn func()) error {
	return l.r.execute(l.el, gnet.RunnableFunc(func(context.Context) error { fn(); return nil }))
}

// Value returns what SetValue stored, nil before (loop-only). It holds a
// Handler's per-loop state, such as a scratch buffer that the loop's
// connections share because only one of them runs at a time.
func (l *Loop) Value() any { return l.value }

// SetValue stores v for Value (loop-only).
func (l *Loop) SetValue(v any) { l.value = v }

// stall adds c to the stalled set and makes sure a recheck is pending.
func (l *Loop) stall(c *Conn) {
	if c.inStall {
		return
	}
	c.inStall = true
	l.stalled = append(l.stalled, c)
	l.r.stats.stalls.Add(1)
	if l.stallTimer == nil {
		l.stallTimer = l.pollAfter(l.r.cfg.StallPoll, l.recheckFn)
	}
}

// recheckOnLoop runs StallPoll after a connection stalled. For each stalled
// connection: a graceful close waiting for gnet's buffer closes once it is
// empty; otherwise, once the buffer is at or below LowWater, OnWritable runs
// (if Writable returned false) and the Send queue pump resumes. Connections
// still above the mark stay stalled and the recheck re-arms.
func (l *Loop) recheckOnLoop() {
	l.stallTimer = nil
	list := l.stalled
	l.stalled = l.spare[:0]
	for i, c := range list {
		list[i] = nil
		c.inStall = false
		if c.dead {
			continue
		}
		ob := c.gc.OutboundBuffered()
		if c.closeWait {
			if ob == 0 {
				c.closeWait = false
				c.closeNowOnLoop()
			} else {
				l.stall(c)
			}
			continue
		}
		if ob > c.lowMark() {
			l.stall(c)
			continue
		}
		if c.wantWritable {
			c.wantWritable = false
			l.r.h.OnWritable(c)
			c.afterUserOnLoop()
			if c.dead {
				continue
			}
		}
		if c.pumpStalled {
			c.pumpStalled = false
			c.pumpOnLoop()
		}
	}
	l.spare = list[:0]
}

// closeAllOnLoop closes every connection of the loop gracefully (Stop).
func (l *Loop) closeAllOnLoop() {
	for c := range l.conns {
		c.Close(ErrStopped)
	}
}

// stopTimer releases the clock timers once the loop has exited.
func (l *Loop) stopTimer() {
	l.spinClose()
	l.timers.stop()
	l.polls.stop()
}

// shortenRead cuts the length of gnet's read buffer of the loop to n
// bytes until the next OnTraffic (restoreRead), and reports
// whether it could (ShortenNextRead). gc is any connection of the loop.
func (l *Loop) shortenRead(gc gnet.Conn, n int) bool {
	if !l.readBufTried {
		l.readBufTried = true
		l.readBuf = gnetReadBuf(gc)
	}
	if l.readBuf == nil {
		return false
	}
	b := *l.readBuf
	*l.readBuf = b[:min(n, cap(b))]
	l.readShort = true
	return true
}

// restoreRead gives gnet's read buffer its full length back (loop-only; at
// the start of each OnTraffic, after the read that ShortenNextRead cut).
func (l *Loop) restoreRead() {
	if !l.readShort {
		return
	}
	l.readShort = false
	b := *l.readBuf
	*l.readBuf = b[:cap(b)]
}

// gnetReadBuf returns a pointer to the read buffer of gc's gnet loop
// (conn.loop.buffer, which every read of the loop fills: unix.Read(fd,
// el.buffer)), or nil if gnet's layout has no such field. As for the
// loop's epoll descriptor (readpause.go), gnet does not export it.
func gnetReadBuf(gc gnet.Conn) (p *[]byte) {
	defer func() {
		if recover() != nil {
			p = nil
		}
	}()
	v := reflect.ValueOf(gc)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	loop := field(v.Elem(), "loop")
	if !loop.IsValid() || loop.Kind() != reflect.Pointer || loop.IsNil() {
		return nil
	}
	buf := field(loop.Elem(), "buffer")
	if !buf.IsValid() || buf.Type() != reflect.TypeOf([]byte(nil)) || buf.Cap() == 0 {
		return nil
	}
	return buf.Addr().Interface().(*[]byte)
}
