package hol

import (
	"context"
	"time"
)

// The end of the measured windows of OneWay and RawTCP.

// TestHookWindowDone, if set by a test, decides when a window of OneWay or
// RawTCP whose time is up ends: the window asks it at the end of its time
// and every holdPoll after that, with what it measured so far (messages
// acknowledged for OneWay, writes for RawTCP) and how long past its time
// the window is (0 at the first call), and ends once it reports true (the
// caller's ctx still ends it at once). Tests of the commands built on this
// package hold a window open until it measured what they assert on, so
// that a process that gets no CPU for a whole window does not fail them
// (docs/testing.md); the rate is still what was measured over the whole,
// longer, window. Set it before the window starts and clear it after.
var TestHookWindowDone func(measured int64, overtime time.Duration) bool

// holdPoll is how often a window held by TestHookWindowDone asks it again.
const holdPoll = 5 * time.Millisecond

// startWindow starts a window of dur: the returned context ends when the
// window's time is up and TestHookWindowDone (if set) agreed, measured
// reporting what the window measured so far, or when ctx ends. stop ends
// the window if it has not ended and waits until its timer goroutine
// returned; call it before returning.
func startWindow(ctx context.Context, dur time.Duration, measured func() int64) (win context.Context, stop func()) {
	win, cancel := context.WithCancel(ctx)
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		endWindow(win, dur, measured, cancel)
	}()
	return win, func() {
		cancel()
		<-returned
	}
}

// endWindow calls end once dur has passed and TestHookWindowDone (if set)
// agreed, or returns without calling it when ctx ends first.
func endWindow(ctx context.Context, dur time.Duration, measured func() int64, end func()) {
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	hook := TestHookWindowDone
	if hook == nil {
		end()
		return
	}
	over := time.Now()
	tick := time.NewTicker(holdPoll)
	defer tick.Stop()
	for overtime := time.Duration(0); !hook(measured(), overtime); overtime = time.Since(over) {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	end()
}
