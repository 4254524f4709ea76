package ipc

import (
	"sync"
	"sync/atomic"

	"github.com/ipcframe/ipcframe/serde"
)

// asyncBlock is the size of the blocks an AsyncSink queues bytes in.
const asyncBlock = 64 << 10

// AsyncSink is a serde.StreamSink that writes a stream field's bytes to
// another sink on a goroutine of its own, so that a slow consumer (a disk,
// another connection) never blocks the event loop that decodes the
// message. Use it in a message's Serde method: v.StreamIn(m.Sink) with
// m.Sink = ipc.NewAsyncSink(file).
//
// The bytes wait in the AsyncSink until its goroutine has written them. With
// a peer that speaks the window extension (docs/protocol.md §7b) they are
// bounded by the message's window (Config.MessageWindow): the sender
// pauses this message alone until the consumer catches up, while the
// connection's other messages keep flowing. With any other peer (a C++
// SolidFrame service) the connection stops reading while its asynchronous
// sinks hold 4 MiB or more, and resumes when they drain.
//
// The handler of the message runs when the last byte has been decoded,
// usually before the consumer has written it: wait for Done (off the event
// loop, for example in a goroutine the handler starts) before using what
// the consumer wrote, then check Err. If the message is abandoned (its
// sender cancels it, or the connection closes first) the queued bytes are
// dropped, Dst is closed and Err reports why.
//
// Write and Close are called by the decoder (the connection's event
// loop); Done and Err by any goroutine.
type AsyncSink struct {
	// immutable
	dst  serde.StreamSink
	done chan struct{}

	// loop-owned: set by the decoding reader (window.go)
	queued int64  // bytes the decoder wrote so far
	held   int64  // of them, not yet reported taken by the goroutine
	bound  bool   // owned by a reader slot
	slot   uint32 // the sender's writer slot of the message
	// windowed: the message obeys a window, so its bytes are bounded by
	// it and do not count toward the connection's read pause.
	windowed bool

	// set once when bound, before the goroutine starts
	post   func(func()) error // runs a function on the loop
	loopFn func()             // reports released bytes on the loop

	released atomic.Int64 // bytes written to dst, not yet reported
	posting  atomic.Bool  // a loopFn is on its way to the loop

	// guarded by mu
	mu      sync.Mutex
	cond    sync.Cond
	blocks  [][]byte // queued bytes, oldest first; blocks[0][head:] unwritten
	head    int
	spare   [][]byte // written blocks kept for reuse
	closed  bool     // Close was called
	stop    error    // the message was abandoned, or dst failed: discard
	started bool     // the goroutine runs

	err error // why the sink ended badly; read after done
}

// NewAsyncSink returns a sink that writes to dst on its own goroutine; dst
// is closed there once the stream ends (or is abandoned).
func NewAsyncSink(dst serde.StreamSink) *AsyncSink {
	s := &AsyncSink{dst: dst, done: make(chan struct{})}
	s.cond.L = &s.mu
	return s
}

// Write queues a copy of p for the goroutine (decoder).
func (s *AsyncSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil || s.closed {
		return len(p), nil // dropped: counts as consumed at once
	}
	for rest := p; len(rest) > 0; {
		if k := len(s.blocks); k == 0 || len(s.blocks[k-1]) == cap(s.blocks[k-1]) {
			var b []byte
			if n := len(s.spare); n > 0 {
				b, s.spare = s.spare[n-1], s.spare[:n-1]
			} else {
				b = make([]byte, 0, asyncBlock)
			}
			s.blocks = append(s.blocks, b)
		}
		last := &s.blocks[len(s.blocks)-1]
		n := min(len(rest), cap(*last)-len(*last))
		*last = append(*last, rest[:n]...)
		rest = rest[n:]
	}
	s.queued += int64(len(p))
	s.startLocked()
	s.cond.Signal()
	return len(p), nil
}

// Close marks the end of the stream (decoder): the goroutine writes what
// is queued, then closes dst.
func (s *AsyncSink) Close() error {
	s.mu.Lock()
	s.closed = true
	s.startLocked()
	s.cond.Signal()
	s.mu.Unlock()
	return nil
}

// Done is closed once dst has been closed.
func (s *AsyncSink) Done() <-chan struct{} { return s.done }

// Err reports, once Done is closed, the first error of dst's Write or
// Close, or why the message was abandoned; nil if every byte was written.
func (s *AsyncSink) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// abort abandons the stream (loop): queued bytes are dropped and dst is
// closed with err as the sink's error.
func (s *AsyncSink) abort(err error) {
	s.mu.Lock()
	if !s.closed && s.stop == nil {
		s.stop = err
		s.startLocked()
		s.cond.Signal()
	}
	s.mu.Unlock()
}

func (s *AsyncSink) startLocked() {
	if !s.started {
		s.started = true
		go s.run()
	}
}

// run writes the queued bytes to dst, one block at a time, without the
// lock, and reports each written block to the loop (release).
func (s *AsyncSink) run() {
	for {
		s.mu.Lock()
		for len(s.blocks) == 0 && !s.closed && s.stop == nil {
			s.cond.Wait()
		}
		if s.stop != nil || len(s.blocks) == 0 {
			dropped := 0
			for _, b := range s.blocks {
				dropped += len(b)
			}
			dropped -= s.head
			s.blocks, s.spare, s.head = nil, nil, 0
			err := s.stop
			s.mu.Unlock()
			s.release(int64(dropped))
			if cerr := s.dst.Close(); err == nil {
				err = cerr
			}
			s.err = err
			close(s.done)
			return
		}
		b := s.blocks[0][s.head:]
		s.mu.Unlock()

		_, werr := s.dst.Write(b)

		s.mu.Lock()
		s.head += len(b)
		if s.head == len(s.blocks[0]) {
			s.spare = append(s.spare, s.blocks[0][:0])
			s.blocks = s.blocks[:copy(s.blocks, s.blocks[1:])]
			s.head = 0
		}
		if werr != nil && s.stop == nil {
			s.stop = werr
		}
		s.mu.Unlock()
		s.release(int64(len(b)))
	}
}

// release reports n bytes taken off the queue to the loop, batching the
// reports while one is on its way.
func (s *AsyncSink) release(n int64) {
	if n == 0 || s.post == nil {
		return
	}
	s.released.Add(n)
	if s.posting.CompareAndSwap(false, true) {
		if s.post(s.loopFn) != nil {
			s.posting.Store(false) // the connection is gone
		}
	}
}
