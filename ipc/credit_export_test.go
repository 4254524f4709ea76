package ipc

import (
	"context"
	"runtime/trace"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// CreditCounts are the credit events counted by CountCredit.
type CreditCounts struct {
	Stalls, Grants atomic.Int64
	// StalledNs is the time some windowed message waited out of credit
	// (from writer.block to the grant that resumed it).
	StalledNs atomic.Int64
	// Dry and Wet count the beside grants' round trips that ran the pipe
	// dry and those that did not (besideProbe); Extra is the window's
	// widening after the last of them.
	Dry, Wet, Extra atomic.Int64
	// Ahead counts the mid-feed flushes whose grant was counted ahead
	// (grantAhead).
	Ahead atomic.Int64

	mu      sync.Mutex
	blocked int
	since   time.Time
	queued  map[uint64][]time.Time // grants queued by readers, per message
	lat     []time.Duration        // grants' times from queued to arrived
}

// GrantLatency returns the median and 90th percentile of the grants' times
// from the reader that queued them to the writer they reached (window.go),
// and how many arrived. Client and server must share the process.
func (n *CreditCounts) GrantLatency() (p50, p90 time.Duration, k int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.lat) == 0 {
		return 0, 0, 0
	}
	l := slices.Clone(n.lat)
	slices.Sort(l)
	return l[len(l)/2], l[len(l)*9/10], len(l)
}

// CountCredit makes the loops count credit events (window.go,
// testHookCredit) into n until the returned function runs; for the
// benchmarks of package ipc_test. Call it before the services start.
func CountCredit(n *CreditCounts) (restore func()) {
	n.queued = map[uint64][]time.Time{}
	testHookCredit = func(ev int, msg uint64) {
		if trace.IsEnabled() {
			trace.Log(context.Background(), "credit", creditEventNames[ev])
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		switch ev {
		case creditStalled:
			n.Stalls.Add(1)
			if n.blocked++; n.blocked == 1 {
				n.since = time.Now()
			}
		case creditGranted:
			n.Grants.Add(1)
			n.queued[msg] = append(n.queued[msg], time.Now())
		case creditArrived:
			if q := n.queued[msg]; len(q) > 0 {
				n.lat = append(n.lat, time.Since(q[0]))
				n.queued[msg] = q[1:]
			}
		case creditDry, creditWet:
			if ev == creditDry {
				n.Dry.Add(1)
			} else {
				n.Wet.Add(1)
			}
			n.Extra.Store(int64(msg))
		case creditAhead:
			n.Ahead.Add(1)
		case creditResumed:
			if n.blocked > 0 {
				if n.blocked--; n.blocked == 0 {
					n.StalledNs.Add(int64(time.Since(n.since)))
				}
			}
		}
	}
	return func() { testHookCredit = nil }
}

// creditEventNames name the credit events in an execution trace
// (-test.trace; category "credit").
var creditEventNames = [...]string{creditStalled: "stalled", creditGranted: "granted", creditArrived: "arrived", creditResumed: "resumed", creditDry: "dry", creditWet: "wet", creditAhead: "ahead"}
