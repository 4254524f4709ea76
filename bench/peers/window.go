package main

import "time"

// The end of the measured windows of runEcho and runStream under tests.

// testHookWindowDone, if set by a test, decides when a measured window of
// runEcho or runStream whose time is up ends: holdWindow asks it at the
// end of the window's time and every holdPoll after that, with what the
// window measured so far (calls recorded, or bytes the server read) and
// how long past its time the window is (0 at the first call), and the
// window ends once it reports true. Tests hold a window open until it
// measured what they assert on, so that a process that gets no CPU for a
// whole window does not fail them (docs/testing.md); the result is still
// what was measured over the whole, longer, window.
var testHookWindowDone func(measured int64, overtime time.Duration) bool

// holdPoll is how often a held window asks testHookWindowDone again.
const holdPoll = 5 * time.Millisecond

// holdWindow returns at once unless testHookWindowDone is set; then it
// returns once the hook reports true for what measured reports, or once
// measured fails (the caller reads the error again and reports it).
func holdWindow(measured func() (int64, error)) {
	hook := testHookWindowDone
	if hook == nil {
		return
	}
	over := time.Now()
	for overtime := time.Duration(0); ; overtime = time.Since(over) {
		n, err := measured()
		if err != nil || hook(n, overtime) {
			return
		}
		time.Sleep(holdPoll)
	}
}
