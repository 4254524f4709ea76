package reactor

import "sync/atomic"

// Stats are cumulative counters of a Reactor, for tests and monitoring.
type Stats struct {
	// Conns is the number of open connections.
	Conns int64
	// Stalls counts connections entering a loop's stalled set: the Send pump
	// paused at HighWater, Writable returned false, or a graceful close
	// waited for gnet's buffer to drain.
	Stalls uint64
	// SendWaits counts Send calls that blocked because the queue was full.
	SendWaits uint64
	// ReadPauses counts Conn.PauseRead calls that paused reading.
	ReadPauses uint64
	// Rejected counts accepted connections closed at once because
	// Config.MaxAccepted were open.
	Rejected uint64
	// Yields counts the times a loop gave up its P after a large read or
	// write on an interleaved connection (Conn.SetInterleaved, yield.go).
	Yields uint64
	// DirectReads and DirectBytes count the reads made straight into a
	// handler's memory (Conn.ReadInto, readinto.go) and the bytes they
	// read.
	DirectReads uint64
	DirectBytes uint64
	// SpinDirectReads counts the times a loop's busy poll found input for
	// a direct read still asked for after an EAGAIN and made it, before
	// gnet could read that input into its buffer (readinto.go).
	SpinDirectReads uint64
	// SpinBackoffs counts busy polls after a bulk transfer that ended early
	// because the CPU was contended (spin.go); each one starts a backoff.
	SpinBackoffs uint64
	// SpinsSkipped counts busy polls after a bulk transfer skipped during
	// such a backoff: the loop blocked in epoll_wait at once.
	SpinsSkipped uint64
}

// counters backs Stats.
type counters struct {
	conns     atomic.Int64
	stalls    atomic.Uint64
	sendWaits atomic.Uint64
	// readPauses backs Stats.ReadPauses.
	readPauses atomic.Uint64
	// rejected backs Stats.Rejected.
	rejected atomic.Uint64
	// yields backs Stats.Yields.
	yields atomic.Uint64
	// directReads and directBytes back Stats.DirectReads and DirectBytes.
	directReads atomic.Uint64
	directBytes atomic.Uint64
	// spinDirectReads backs Stats.SpinDirectReads.
	spinDirectReads atomic.Uint64
	// spinBackoffs backs Stats.SpinBackoffs.
	spinBackoffs atomic.Uint64
	// spinsSkipped backs Stats.SpinsSkipped.
	spinsSkipped atomic.Uint64
}

// Stats returns a snapshot of the reactor's counters (any goroutine).
func (r *Reactor) Stats() Stats {
	return Stats{
		Conns:           r.stats.conns.Load(),
		Stalls:          r.stats.stalls.Load(),
		SendWaits:       r.stats.sendWaits.Load(),
		ReadPauses:      r.stats.readPauses.Load(),
		Rejected:        r.stats.rejected.Load(),
		Yields:          r.stats.yields.Load(),
		DirectReads:     r.stats.directReads.Load(),
		DirectBytes:     r.stats.directBytes.Load(),
		SpinDirectReads: r.stats.spinDirectReads.Load(),
		SpinBackoffs:    r.stats.spinBackoffs.Load(),
		SpinsSkipped:    r.stats.spinsSkipped.Load(),
	}
}
