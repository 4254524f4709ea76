package ipc

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ipcframe/ipcframe/serde"
)

// An AsyncSource reads ahead into at most asyncSourceBlocks blocks of
// asyncSourceBlock bytes: about 512 KiB per message being sent. A block
// and its headers fit one 64 KiB packet, so that each large packet carries
// one whole block lent as it is (Lend); one write of the long pipe
// (pipeLongBatch, 256 KiB) carries four, and the goroutine fills the other
// four meanwhile.
const (
	asyncSourceBlock  = 64<<10 - 64
	asyncSourceBlocks = 8
	// asyncSourceEmptyReads is how many reads in a row may return no bytes
	// and no error before the source fails with io.ErrNoProgress.
	asyncSourceEmptyReads = 100
)

// ErrSourceAbandoned is what an AsyncSource's Read and Err return once it
// stopped before the end of its reader: Close was called, or its message
// was canceled, failed, or lost its connection while being sent.
var ErrSourceAbandoned = errors.New("ipc: stream source abandoned")

// AsyncSource is a serde.StreamSource that reads another reader on a
// goroutine of its own, ahead of the event loop that sends the message, so
// that a slow or costly source (a disk, a generator, a hash over the
// bytes) never blocks the loop and runs beside its system calls instead of
// between them. It is the sending twin of AsyncSink. Use it in a message's
// Serde method: v.StreamOut(m.Src) with m.Src = ipc.NewAsyncSource(file).
//
// The goroutine starts when the message's stream starts being sent and
// reads into at most eight 64 KiB blocks (512 KiB per message); it waits
// while all are full. The event loop sends ready blocks as they are, each
// the tail of a large packet (Lend: no copy, like a large []byte field's
// bytes, borrow.go), or copies them into its packets when it cannot (small
// packets, compression), and never waits: when no block is ready, the
// message pauses
// (it leaves the connection's write queue) while the connection's other
// messages keep flowing, and resumes as soon as the goroutine has read the
// next block.
//
// If the reader is an io.Closer it is closed on that goroutine once
// reading stops: at io.EOF, at a read error (which fails the message with
// ErrEncode), or when the source is abandoned (Close, or the message was
// canceled, failed or lost its connection), whichever comes first. A Read
// of the reader that blocks keeps the goroutine until it returns.
//
// An AsyncSource serves one message, once: a message whose sending was
// abandoned cannot be sent again with the same source (the resent message
// fails with ErrEncode and ErrSourceAbandoned). If the message never
// starts being sent (it fails or is canceled while queued), nothing reads
// the source: call Close to release it.
//
// Read is called by the encoder (the connection's event loop); Close,
// Done and Err by any goroutine.
type AsyncSource struct {
	// immutable
	src  io.Reader
	done chan struct{}

	// loop-owned: set when the writer first pauses the message on the
	// source (writer.parkSource), before the goroutine can use post.
	post   func(func()) error // runs a function on the loop
	loopFn func()             // resumes the message on the loop
	slot   int32              // the message's writer slot
	bound  bool

	// guarded by mu
	mu      sync.Mutex
	cond    sync.Cond
	ready   [][]byte // blocks read, oldest first; ready[0][head:] not yet sent
	head    int
	spare   [][]byte // empty blocks for the goroutine
	lent    [][]byte // blocks sent whose bytes a write may still carry (until Release)
	lending bool     // bytes were lent since the last Release
	made    int      // blocks allocated, at most asyncSourceBlocks
	end     error    // the reader's last error (io.EOF: its end), after ready
	stop    error    // abandoned: blocks dropped, the goroutine ends
	started bool     // the goroutine runs or ran
	waiting bool     // the loop waits for a block: post loopFn once

	err error // why reading stopped (nil at io.EOF); read after done
}

// NewAsyncSource returns a stream source that reads src on its own
// goroutine once its message starts being sent.
func NewAsyncSource(src io.Reader) *AsyncSource {
	s := &AsyncSource{src: src, done: make(chan struct{})}
	s.cond.L = &s.mu
	return s
}

// Read copies the bytes read ahead into p (encoder, on the event loop). It
// never waits: with nothing read yet it starts the goroutine if needed and
// returns serde.ErrNotReady, and the writer pauses the message until a
// block is ready.
func (s *AsyncSource) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		return 0, s.stop
	}
	n, freed := 0, false
	for n < len(p) && len(s.ready) > 0 {
		b := s.ready[0]
		k := copy(p[n:], b[s.head:])
		n += k
		if s.head += k; s.head == len(b) {
			s.popReadyLocked()
			freed = !s.lending
		}
	}
	if freed {
		s.cond.Signal()
	}
	switch {
	case n > 0:
		return n, nil
	case s.end != nil:
		return 0, s.end
	}
	s.startLocked()
	return 0, serde.ErrNotReady
}

// Lend hands out up to max of the bytes read ahead without copying them
// (serde.StreamLender; the writer on the event loop, serde.Encoder.LendStream),
// or returns nil with none ready (the encoder then calls Read, which parks
// the message). The blocks lent stay out of the goroutine's reach until
// Release: the writer releases them once the write carrying them has
// returned (the reactor has sent or copied every piece by then).
func (s *AsyncSource) Lend(max int) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil || len(s.ready) == 0 || max <= 0 {
		return nil
	}
	b := s.ready[0]
	k := min(max, len(b)-s.head)
	p := b[s.head : s.head+k : s.head+k]
	s.lending = true
	if s.head += k; s.head == len(b) {
		s.popReadyLocked()
	}
	return p
}

// Release gives the blocks lent since the last Release back to the
// goroutine (serde.StreamLender; the writer, after the write).
func (s *AsyncSource) Release() {
	s.mu.Lock()
	s.lending = false
	if len(s.lent) > 0 {
		s.spare = append(s.spare, s.lent...)
		clear(s.lent)
		s.lent = s.lent[:0]
		s.cond.Signal()
	}
	s.mu.Unlock()
}

// popReadyLocked retires the oldest ready block, all of it sent: back to
// the goroutine, or held until Release while a write may carry lent bytes
// of it or of blocks before it.
func (s *AsyncSource) popReadyLocked() {
	b := s.ready[0][:0]
	s.ready = s.ready[:copy(s.ready, s.ready[1:])]
	s.head = 0
	if s.lending {
		s.lent = append(s.lent, b)
	} else {
		s.spare = append(s.spare, b)
	}
}

// Close abandons the source (any goroutine): the goroutine stops after the
// read under way, the blocks are dropped, the reader is closed if it is an
// io.Closer, and the message, if it is still being sent, fails with
// ErrEncode. Close after the end changes nothing. It returns nil.
func (s *AsyncSource) Close() error {
	s.abort(ErrSourceAbandoned)
	return nil
}

// Done is closed once the goroutine has stopped reading (and closed the
// reader).
func (s *AsyncSource) Done() <-chan struct{} { return s.done }

// Err reports, once Done is closed, why reading stopped: nil when the
// reader reached io.EOF, its error, or ErrSourceAbandoned.
func (s *AsyncSource) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// abort stops reading with cause unless the reader's end was reached
// first; the blocks read ahead are dropped either way.
func (s *AsyncSource) abort(cause error) {
	s.mu.Lock()
	if s.stop == nil {
		s.stop = cause
		s.ready, s.spare, s.lent, s.head = nil, nil, nil, 0
		s.startLocked() // an unstarted source still closes its reader
		s.cond.Signal()
	}
	s.mu.Unlock()
}

func (s *AsyncSource) startLocked() {
	if !s.started {
		s.started = true
		go s.run()
	}
}

// run reads the source a block at a time, without the lock, while a block
// is free, and wakes the loop when it waits for one.
func (s *AsyncSource) run() {
	empty := 0
	for {
		s.mu.Lock()
		for s.stop == nil && s.end == nil && len(s.spare) == 0 && s.made == asyncSourceBlocks {
			s.cond.Wait()
		}
		if s.stop != nil || s.end != nil {
			s.mu.Unlock()
			s.finish()
			return
		}
		var b []byte
		if k := len(s.spare); k > 0 {
			b, s.spare = s.spare[k-1], s.spare[:k-1]
		} else {
			s.made++
		}
		s.mu.Unlock()
		if b == nil {
			b = make([]byte, 0, asyncSourceBlock)
		}

		n, err := s.src.Read(b[:cap(b)])
		switch {
		case n < 0 || n > cap(b):
			n, err = 0, fmt.Errorf("%w: stream source returned count %d", serde.ErrBadValue, n)
		case n == 0 && err == nil:
			if empty++; empty >= asyncSourceEmptyReads {
				err = io.ErrNoProgress
			}
		default:
			empty = 0
		}

		s.mu.Lock()
		wake := false
		if s.stop == nil {
			if n > 0 {
				s.ready = append(s.ready, b[:n])
			} else {
				s.spare = append(s.spare, b)
			}
			if err != nil {
				s.end = err
			}
			if s.waiting && (n > 0 || err != nil) {
				s.waiting, wake = false, true
			}
		}
		s.mu.Unlock()
		if wake && s.post(s.loopFn) != nil {
			// The connection is gone: its close abandons the source.
			wake = false
		}
	}
}

// finish closes the reader and Done, recording why reading stopped
// (goroutine).
func (s *AsyncSource) finish() {
	s.mu.Lock()
	err := s.end       // the reader's end or error, if reached, else the abandonment
	if err == io.EOF { //nolint:errorlint // io.EOF is returned as is
		err = nil
	} else if err == nil {
		err = s.stop
	}
	s.mu.Unlock()
	if c, ok := s.src.(io.Closer); ok {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	s.err = err
	close(s.done)
}

// parkOnLoop notes that the loop waits for the next block (writer); it
// reports false when one is ready already (or the end or an abandonment),
// in which case the message goes on at once.
func (s *AsyncSource) parkOnLoop() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ready) > 0 || s.end != nil || s.stop != nil {
		return false
	}
	s.waiting = true
	return true
}

// waitSource handles slot i, the front of the write queue, whose encoder
// stopped at a stream source with nothing ready (serde.ErrNotReady), after
// n bytes of the chunk at c (loop). The chunk is finished if it has bytes;
// an AsyncSource's message leaves the write queue (slotParked) until its
// goroutine has read a block, while the others keep flowing. Any other
// source fails the message: nothing would wake it.
func (w *writer) waitSource(i int32, c []byte, dataOff, n int, off *int) error {
	s := &w.slots[i]
	src := s.enc.Waiting()
	as, ok := src.(*AsyncSource)
	if !ok || w.post == nil {
		return w.encodeFailed(i, c, cmdMessage, dataOff, n, off,
			fmt.Errorf("%w: %T returned serde.ErrNotReady (only an ipc.AsyncSource may)", serde.ErrNoProgress, src))
	}
	if n > 0 {
		finishChunk(c, cmdMessage, n)
		*off += dataOff + n
		s.bytes += n
		if s.windowed {
			s.credit -= int64(n)
		}
	}
	if !as.bound {
		as.bound, as.slot, as.post = true, i, w.post
		as.loopFn = func() { w.unparkSource(as) }
	}
	s.asrc = as
	w.wq.pop()
	w.setLarge(s, false) // out of the write queue (pipe.go)
	s.phase, s.cont = slotParked, 0
	if !as.parkOnLoop() {
		w.resumeSource(s, i)
	}
	return nil
}

// resumeSource puts slot i, parked on its source, back in the write queue.
func (w *writer) resumeSource(s *wslot, i int32) {
	s.phase = slotBody
	w.setLarge(s, s.bytes > smallMessage)
	w.wq.push(i)
}

// unparkSource puts the message paused on as back in the write queue and
// pumps (loop; posted by the source's goroutine). A message that has gone
// meanwhile is left alone.
func (w *writer) unparkSource(as *AsyncSource) {
	i := as.slot
	if int(i) >= len(w.slots) || w.slots[i].asrc != as || w.slots[i].phase != slotParked {
		return
	}
	w.resumeSource(&w.slots[i], i)
	if w.afterUnpark != nil {
		w.afterUnpark()
	}
}

// dropSource abandons the asynchronous source of slot i, if any: its
// message was written, canceled or failed, or the connection closed
// (loop). After the last byte the source has ended, and this changes
// nothing.
func (w *writer) dropSource(i int32) {
	if s := &w.slots[i]; s.asrc != nil {
		s.asrc.abort(ErrSourceAbandoned)
		s.asrc = nil
	}
}

// lend is borrow (borrow.go) for a stream field whose source lends its
// bytes (an AsyncSource): the next piece's 2-byte header written at room
// and the source's bytes that follow it in the packet, or (0, nil). The
// source is noted for releaseLent.
func (w *writer) lend(s *wslot, room []byte) (int, []byte) {
	if !w.mayBorrow || w.codec != nil || s.phase != slotBody || s.st.credit || s.st.relay != nil || len(room) < borrowMin {
		return 0, nil
	}
	k, b, l := s.enc.LendStream(room)
	if b == nil {
		return 0, nil
	}
	if n := len(w.lenders); n == 0 || w.lenders[n-1] != l {
		w.lenders = append(w.lenders, l)
	}
	if testHookLend != nil {
		testHookLend(len(b))
	}
	return k, b
}

// testHookLend, if set by a test before its services start, runs on the
// loop with the bytes of each piece a writer sends as its source lent it.
var testHookLend func(n int)

// releaseLent gives the bytes lent to the write just made back to their
// sources (loop; pump, after the reactor's Write returned, which sent or
// copied them, or when the batch is dropped).
func (w *writer) releaseLent() {
	for i, l := range w.lenders {
		l.Release()
		w.lenders[i] = nil
	}
	w.lenders = w.lenders[:0]
}
