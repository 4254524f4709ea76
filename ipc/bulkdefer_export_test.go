package ipc

import "sync/atomic"

// CountDeferPassed counts the feeds that dispatched a message ahead of a
// large value's noted bytes, and those bytes, until restore is called
// (bulkdefer.go); set before the services start.
func CountDeferPassed(feeds, bytes *atomic.Int64) (restore func()) {
	testHookDeferPassed = func(n int) { feeds.Add(1); bytes.Add(int64(n)) }
	return func() { testHookDeferPassed = nil }
}
