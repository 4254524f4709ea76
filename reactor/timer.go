package reactor

import (
	"container/heap"
	"context"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/ipcframe/ipcframe/internal/clock"
)

// Timer is a loop timer made by Loop.AfterFunc. Its methods are loop-only.
type Timer struct {
	set   *timerSet
	when  time.Time
	seq   uint64
	fn    func()
	index int // position in set.heap; -1 once fired or stopped
}

// timerSet is a loop's timers on one clock: a min-heap of deadlines and one
// clock timer armed for the earliest. A loop has two: its timers, on
// Config.Clock (Loop.AfterFunc), and its polls, always on the system clock
// (the stall recheck, an implementation detail that must run whatever a
// test does with the clock).
type timerSet struct {
	// immutable
	l        *Loop
	clock    clock.Clock
	fireTask gnet.Runnable // runs fireDueOnLoop on the loop

	// loop-owned
	heap   timerHeap
	seq    uint64      // equal deadlines fire FIFO
	wakeAt time.Time   // deadline tm is armed for; zero if disarmed
	tm     clock.Timer // created on first use; its callback hops into the loop
}

func (s *timerSet) init(l *Loop, c clock.Clock) {
	s.l, s.clock = l, c
	s.fireTask = gnet.RunnableFunc(func(context.Context) error { s.fireDueOnLoop(); return nil })
}

// AfterFunc runs fn on the loop after d (loop-only), as measured by
// Config.Clock. Timers with equal deadlines fire in the order they were
// made. A timer fires at most once, typically within a fraction of a
// millisecond after its deadline (it needs a clock timer plus one hop into
// the loop).
//
// The loop keeps its timers in a min-heap and arms one clock timer for the
// earliest deadline; when it fires, the loop runs every due timer and
// re-arms for the next one.
func (l *Loop) AfterFunc(d time.Duration, fn func()) *Timer {
	return l.timers.add(d, fn)
}

// pollAfter is AfterFunc on the system clock, for the loop's own polls.
func (l *Loop) pollAfter(d time.Duration, fn func()) *Timer {
	return l.polls.add(d, fn)
}

func (s *timerSet) add(d time.Duration, fn func()) *Timer {
	d = max(d, 0)
	t := &Timer{set: s, when: s.clock.Now().Add(d), seq: s.seq, fn: fn}
	s.seq++
	heap.Push(&s.heap, t)
	if t.index == 0 {
		s.arm(t.when)
	}
	return t
}

// Stop cancels the timer (loop-only); it reports whether it was pending.
// After Stop returns, fn does not run.
func (t *Timer) Stop() bool {
	if t.index < 0 {
		return false
	}
	heap.Remove(&t.set.heap, t.index)
	return true
}

// arm makes the clock timer fire no later than when.
func (s *timerSet) arm(when time.Time) {
	if !s.wakeAt.IsZero() && !when.Before(s.wakeAt) {
		return
	}
	s.wakeAt = when
	d := max(when.Sub(s.clock.Now()), 0)
	if s.tm == nil {
		s.tm = s.clock.AfterFunc(d, s.onTimer)
	} else {
		s.tm.Reset(d)
	}
}

// onTimer runs on the clock's goroutine: hop into the loop.
func (s *timerSet) onTimer() {
	_ = s.l.r.execute(s.l.el, s.fireTask)
}

// fireDueOnLoop runs every due timer in deadline order, then re-arms.
func (s *timerSet) fireDueOnLoop() {
	s.wakeAt = time.Time{}
	now := s.clock.Now()
	for len(s.heap) > 0 && !s.heap[0].when.After(now) {
		t := heap.Pop(&s.heap).(*Timer)
		t.fn()
	}
	if len(s.heap) > 0 {
		s.arm(s.heap[0].when)
	}
}

// stop releases the clock timer once the loop has exited.
func (s *timerSet) stop() {
	if s.tm != nil {
		s.tm.Stop()
	}
}

// timerHeap orders timers by deadline, then by creation.
type timerHeap []*Timer

func (h timerHeap) Len() int { return len(h) }

func (h timerHeap) Less(i, j int) bool {
	if h[i].when.Equal(h[j].when) {
		return h[i].seq < h[j].seq
	}
	return h[i].when.Before(h[j].when)
}

func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *timerHeap) Push(x any) {
	t := x.(*Timer)
	t.index = len(*h)
	*h = append(*h, t)
}

func (h *timerHeap) Pop() any {
	old := *h
	n := len(old) - 1
	t := old[n]
	old[n] = nil
	t.index = -1
	*h = old[:n]
	return t
}
