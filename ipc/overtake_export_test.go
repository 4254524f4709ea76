package ipc

import "sync/atomic"

// CountOvertakes makes the loops count, into n, the bytes of packets
// decoded ahead of the rest of a read (overtake.go, testHookOvertake) until the returned
// function runs; for the benchmarks of package ipc_test. Call it before
// the services start.
func CountOvertakes(n *atomic.Int64) (restore func()) {
	testHookOvertake = func(b int) { n.Add(int64(b)) }
	return func() { testHookOvertake = nil }
}
