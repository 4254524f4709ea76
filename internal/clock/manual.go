package clock

import (
	"sort"
	"sync"
	"time"
)

// Manual is a clock that moves only when told: Advance and Set run the
// calls that fall due, in deadline order (creation order for equal
// deadlines), on the goroutine that moved the clock. It is safe for
// concurrent use; calls run without its lock held, so they may use the
// clock.
type Manual struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers map[*manualTimer]struct{} // pending
	armed  chan struct{}             // closed and replaced when a call is scheduled
}

// NewManual returns a manual clock that reads start.
func NewManual(start time.Time) *Manual {
	return &Manual{now: start, timers: map[*manualTimer]struct{}{}, armed: make(chan struct{})}
}

// Now returns the clock's time.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// AfterFunc schedules f for d after the clock's time. A call due at once
// (d <= 0) still waits for the next Advance or Set, like a real timer that
// has not yet had its goroutine scheduled.
func (m *Manual) AfterFunc(d time.Duration, f func()) Timer {
	t := &manualTimer{m: m, f: f}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.scheduleLocked(t, d)
	return t
}

// Advance moves the clock forward by d and runs every call that falls due.
func (m *Manual) Advance(d time.Duration) {
	m.mu.Lock()
	to := m.now.Add(d)
	m.mu.Unlock()
	m.Set(to)
}

// Set moves the clock to t (never backwards) and runs every call due by
// then. The clock steps through the deadlines: each call sees Now equal to
// its deadline, and a call scheduled by a call that runs, and due by t,
// runs too.
func (m *Manual) Set(t time.Time) {
	for {
		m.mu.Lock()
		next := m.nextLocked()
		if next == nil || next.when.After(t) {
			if t.After(m.now) {
				m.now = t
			}
			m.mu.Unlock()
			return
		}
		if next.when.After(m.now) {
			m.now = next.when
		}
		delete(m.timers, next)
		m.mu.Unlock()
		next.f()
	}
}

// Pending returns the number of scheduled calls.
func (m *Manual) Pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.timers)
}

// Next returns the deadline of the earliest scheduled call; ok is false
// when none is.
func (m *Manual) Next() (when time.Time, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.nextLocked(); t != nil {
		return t.when, true
	}
	return time.Time{}, false
}

// Scheduled returns a channel closed the next time a call is scheduled
// (AfterFunc or Reset): a test waits on it for the engine to arm a timer
// before it moves the clock.
func (m *Manual) Scheduled() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.armed
}

// WaitPending blocks until at least n calls are scheduled or done is
// closed; it reports whether n were.
func (m *Manual) WaitPending(n int, done <-chan struct{}) bool {
	for {
		m.mu.Lock()
		if len(m.timers) >= n {
			m.mu.Unlock()
			return true
		}
		ch := m.armed
		m.mu.Unlock()
		select {
		case <-ch:
		case <-done:
			return false
		}
	}
}

func (m *Manual) scheduleLocked(t *manualTimer, d time.Duration) {
	t.when = m.now.Add(max(d, 0))
	t.seq = m.seq
	m.seq++
	m.timers[t] = struct{}{}
	close(m.armed)
	m.armed = make(chan struct{})
}

func (m *Manual) nextLocked() *manualTimer {
	if len(m.timers) == 0 {
		return nil
	}
	ts := make([]*manualTimer, 0, len(m.timers))
	for t := range m.timers {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].when.Equal(ts[j].when) {
			return ts[i].seq < ts[j].seq
		}
		return ts[i].when.Before(ts[j].when)
	})
	return ts[0]
}

type manualTimer struct {
	m    *Manual
	f    func()
	when time.Time // guarded by m.mu
	seq  uint64    // guarded by m.mu
}

func (t *manualTimer) Stop() bool {
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	_, ok := t.m.timers[t]
	delete(t.m.timers, t)
	return ok
}

func (t *manualTimer) Reset(d time.Duration) bool {
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	_, ok := t.m.timers[t]
	t.m.scheduleLocked(t, d)
	return ok
}
