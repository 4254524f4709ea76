package ipc

import "sync/atomic"

// CreditCounts are the credit events counted by CountCredit.
type CreditCounts struct {
	Stalls, Grants atomic.Int64
}

// CountCredit makes the loops count credit events (window.go,
// testHookCredit) into n until the returned function runs; for the
// benchmarks of package ipc_test. Call it before the services start.
func CountCredit(n *CreditCounts) (restore func()) {
	testHookCredit = func(ev int) {
		switch ev {
		case creditStalled:
			n.Stalls.Add(1)
		case creditGranted:
			n.Grants.Add(1)
		}
	}
	return func() { testHookCredit = nil }
}
