package reactor

import (
	"container/heap"
	"time"
)

// Timer is a loop timer made by Loop.AfterFunc. Its methods are loop-only.
type Timer struct {
	l     *Loop
	when  time.Time
	seq   uint64
	fn    func()
	index int // position in l.timers; -1 once fired or stopped
}

// AfterFunc runs fn on the loop after d (loop-only). Timers with equal
// deadlines fire in the order they were made. A timer fires at most once,
// typically within a fraction of a millisecond after its deadline (it needs
// a runtime timer plus one hop into the loop).
//
// The loop keeps its timers in a min-heap and arms one runtime timer for the
// earliest deadline; when it fires, the loop runs every due timer and re-arms
// for the next one.
func (l *Loop) AfterFunc(d time.Duration, fn func()) *Timer {
	d = max(d, 0)
	t := &Timer{l: l, when: time.Now().Add(d), seq: l.seq, fn: fn}
	l.seq++
	heap.Push(&l.timers, t)
	if t.index == 0 {
		l.arm(t.when)
	}
	return t
}

// Stop cancels the timer (loop-only); it reports whether it was pending.
// After Stop returns, fn does not run.
func (t *Timer) Stop() bool {
	if t.index < 0 {
		return false
	}
	heap.Remove(&t.l.timers, t.index)
	return true
}

// arm makes the runtime timer fire no later than when.
func (l *Loop) arm(when time.Time) {
	if !l.wakeAt.IsZero() && !when.Before(l.wakeAt) {
		return
	}
	l.wakeAt = when
	d := max(time.Until(when), 0)
	if l.tm == nil {
		l.tm = time.AfterFunc(d, l.onTimer)
	} else {
		l.tm.Reset(d)
	}
}

// onTimer runs on the runtime's timer goroutine: hop into the loop.
func (l *Loop) onTimer() {
	_ = l.r.execute(l.el, l.fireTask)
}

// fireDueOnLoop runs every due timer in deadline order, then re-arms.
func (l *Loop) fireDueOnLoop() {
	l.wakeAt = time.Time{}
	now := time.Now()
	for len(l.timers) > 0 && !l.timers[0].when.After(now) {
		t := heap.Pop(&l.timers).(*Timer)
		t.fn()
	}
	if len(l.timers) > 0 {
		l.arm(l.timers[0].when)
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
