package main

import (
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/hol"
)

// windowHoldLimit is how long past its time holdWindow keeps a window open
// at most: a hang guard, not a bound. An engine that completes nothing
// then ends the window with no requests, and the test's assertions fail.
const windowHoldLimit = 60 * time.Second

// holdWindow keeps each measured window of the test (measure) open past
// its duration until at least one completion was measured in it, at least
// minSamples samples were taken and, if count is not nil, count grew after
// the window's time was up (so that it grew within the window), so that the
// test's assertions on requests, samples and counts do not depend on the
// process getting CPU within the window's wall time (a loaded CI machine
// can starve it for longer than a window). The one-way windows and raw TCP
// streams of internal/hol are held until they measured one message or one
// write (hol.TestHookWindowDone). The returned func stops holding
// (for a later window that must complete nothing); the test's cleanup
// stops it too.
func holdWindow(t *testing.T, minSamples int, count func() uint64) (stop func()) {
	t.Helper()
	var base uint64 // count at the end of the window's time
	testHookWindowDone = func(measured int64, samples int, overtime time.Duration) bool {
		grew := true
		if count != nil {
			if overtime == 0 {
				base = count()
			}
			grew = count() > base
		}
		return measured > 0 && samples >= minSamples && grew || overtime >= windowHoldLimit
	}
	// The one-way windows (-mode relay, large) and raw TCP references of
	// internal/hol: until one message was acknowledged, or one write made.
	hol.TestHookWindowDone = func(measured int64, overtime time.Duration) bool {
		return measured > 0 || overtime >= windowHoldLimit
	}
	stop = func() { testHookWindowDone, hol.TestHookWindowDone = nil, nil }
	t.Cleanup(stop)
	return stop
}
