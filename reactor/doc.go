// Package reactor runs connections on gnet event loops and adds what gnet
// v2.9.7 lacks for a message-passing engine: ordered cross-goroutine
// submission, write back-pressure, per-loop timers, graceful close and
// protection against stale handles.
//
// # Loops
//
// A Reactor is one gnet engine (gnet.Rotate) with Config.Loops event loops
// and least-connections balancing. It always listens (Start("") listens on a
// private 127.0.0.1:0 so that dialed sockets can be registered); Dial
// connects with the standard dialer off the loops, then registers the socket
// on the engine, so accepted and dialed connections share the loops and the
// Handler (DialWith registers a connection a Connect function opened, such
// as one through a proxy's handshake). Start returns after gnet's first OnTick, which gnet issues only
// once the loops exist. gnet's logs go to Config.Logger.
//
// Each connection belongs to one loop. Handler methods, Execute functions
// and loop timers of a loop run one at a time on its goroutine and must not
// block.
//
// # Any-goroutine vs loop-only
//
// Any goroutine may call Conn.ID, Data, Dialed, LocalAddr, RemoteAddr, Loop,
// Send, Execute, Wake, Close and Abort, Loop.Execute, and the Reactor
// methods (Dial and Stop not from a loop). Everything else — Conn.SetData,
// Write, Writable, Closed, Loop.AfterFunc, Timer.Stop — is loop-only: call
// it from Handler methods, Execute functions or timers of the connection's
// loop. Loop-side code never takes a lock that user code can hold.
//
// # Send queue
//
// gnet's cross-goroutine task queues reorder under load, so the reactor never
// relies on their order (nor on AsyncWrite). Each connection has its own
// queue (mutex and slice) of Send buffers and Execute functions, plus an
// atomic scheduled flag: the submitter that sets it enters the loop with one
// gnet Execute of a task allocated once per connection; the pump on the loop
// drains the queue in order, writing runs of buffers with one Writev, and
// clears the flag when the queue is empty (rechecking for a racing Send).
// At most one pump task per connection is ever pending in gnet. Wake uses a
// second state and task the same way, so repeated Wakes coalesce and do not
// allocate. A Wake made during OnWake (a handler going on in bounded steps)
// is submitted when OnWake returns; once every eight such wakes in a row it
// waits until gnet has read the loop's sockets if any has input waiting:
// gnet runs queued tasks until its queue is empty before it polls, so a
// handler that re-woke itself at once kept its loop from reading
// (rewake.go).
//
// # Back-pressure
//
// gnet's outbound buffer is unbounded and has no drained callback. The
// reactor bounds it in three places:
//   - Send blocks while the queue holds MaxQueued bytes.
//   - The pump stops handing bytes to gnet while OutboundBuffered() is at
//     HighWater; the connection joins its loop's stalled set.
//   - Writable (loop side) is false at HighWater (gnet's buffer plus the
//     queue) and then owes an OnWritable.
//
// A loop with stalled connections rechecks them when a stalled socket
// drains (the write poller, writable.go, with TCP_NOTSENT_LOWAT from
// Config.NotSentLowat) and at the latest every StallPoll (a loop poll on the
// system clock): at LowWater it calls OnWritable and resumes the pump. Inbound,
// gnet always reads; the handler gets every unconsumed byte in OnData, and
// more than MaxInbound unconsumed bytes close the connection with
// ErrInboundOverflow. Flow control across the wire is the protocol's job.
//
// # Timers
//
// Loop.AfterFunc keeps a per-loop min-heap of deadlines and one clock
// timer armed for the earliest; it fires into the loop with one Execute that
// runs every due timer. Timer.Stop removes the timer, so a stopped timer
// never runs. Deadlines are read from Config.Clock (nil: the system clock),
// so tests can drive timers with a manual clock; StallPoll, BusyPoll and
// DialTimeout always use the system clock.
//
// # Close
//
// gnet's Close drops unsent output, and a stale gnet.Conn's Write reaches
// whatever socket reuses its fd. So: Close(err) stops Send and Execute,
// drains the queue, waits in the stalled set until gnet's buffer is empty,
// then closes; Abort(err) closes at once. OnClose marks the Conn dead and
// clears its gnet.Conn: afterwards Write, Send and Execute return ErrClosed
// and nothing touches the socket. gnet's Write may close the connection
// re-entrantly on an I/O error; every write is followed by a dead check.
// OnClose runs exactly once per Conn, with the error given to the first
// Close or Abort (ErrClosed for nil), ErrInboundOverflow, ErrStopped (Stop)
// or gnet's I/O error (wrapping io.EOF for a peer close).
//
// Reactor.Stop closes every connection gracefully, waits (bounded by its
// context), then stops gnet, which closes what is left; afterwards nothing
// enters gnet's loops (their event fds are closed).
//
// # Reading into the handler's memory
//
// A Handler that implements ReadIntoHandler may call Conn.ReadInto from
// OnData to name where the connection's next bytes belong (a large value's
// final array, say): once gnet holds none of the connection's input, the
// loop reads the socket itself into those buffers, without blocking, and
// reports the bytes with OnReadInto instead of OnData, so they are never
// copied out of gnet's buffer. A request that meets EAGAIN stands, and the
// loop's busy poll makes the read when the input comes while it polls,
// before gnet could read it (Stats.SpinDirectReads). Plain TCP only; never
// while reads are paused or after Abort (readinto.go).
//
// # TLS
//
// With TLSConfig.Server set every accepted connection is a TLS server;
// DialTLS dials a TLS client. The handshake runs on a short-lived goroutine
// of a bounded pool, fed by the loop through a pipe, and the loop owns the
// record layer afterwards (tls.go): Handler.OnOpen runs once the handshake
// succeeded, OnData sees plaintext, Write encrypts, a graceful Close sends
// close_notify. A failed handshake never reaches the Handler.
//
// # Latency (measured, 2-vCPU VM, go test -bench, one loop)
//
// BenchmarkPingPong1K (std-net client, reactor echo with loop-side Write):
// 6.5–7.7 µs per 1 KiB round trip, 0 allocs. BenchmarkSendRoundTrip1K
// (goroutine Send → pump → std-net echo → OnData → channel): 51–56 µs,
// 2 allocs (gnet's Execute closure and task-queue node; the reactor itself
// allocates nothing); these two figures predate busy polling. The gap is the
// cross-goroutine hop into a loop parked in epoll_wait (eventfd write plus
// thread wake-up); gnet itself does only one non-blocking epoll_wait and a
// Gosched before blocking. Busy polling (Config.BusyPoll, spin.go) now shortens it: after
// handling traffic or a wake-up a loop keeps polling a private epoll set of
// its connections, without blocking, for up to BusyPoll (50 µs by default),
// so the next packet or task finds the thread running (the round trip of a
// concurrency-1 1 KiB echo fell from about 68 µs to about 12 µs;
// docs/benchmarks.md). A spin after a bulk transfer (32 KiB or more moved
// since the loop last spun on connections marked Conn.SetBulk: a large
// message under way) ends as soon as one of its yields gave the CPU
// away for over 20 µs, and the loop then skips bulk spins for 1 ms
// (Stats.SpinBackoffs, SpinsSkipped): on a contended machine the next batch
// of a stream is not worth the CPU that others need. Latency-critical
// request/response paths should still
// write from the loop (Write in OnData or an Execute already running)
// rather than Send from another goroutine.
//
// gnet runs Register through its global goroutine pool (ants), whose idle
// workers linger for about ten seconds; leak checks should ignore
// github.com/panjf2000/ants/v2.(*goWorker).run.func1 and the pool's
// background goroutines (goleak.IgnoreCurrent at start covers the latter).
package reactor
