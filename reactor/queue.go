package reactor

import "context"

// op is one entry of a connection's Send queue: bytes to write or a
// function to run on the loop.
type op struct {
	b  []byte
	fn func()
}

// batchBytes bounds the bytes one pump batch (one gnet Writev) takes.
const batchBytes = 256 << 10

// Send queues b to be written after everything sent before it, from any
// goroutine. Buffers sent by one goroutine are written in the order of its
// Send calls, interleaved with its Execute functions in call order.
//
// It blocks while the queue is not empty and adding b would exceed
// MaxQueued bytes (so a single buffer larger than MaxQueued is accepted into
// an empty queue), until ctx ends (it returns context.Cause(ctx)) or the
// connection closes (ErrClosed). After Close or Abort it returns ErrClosed.
// b must not be modified after Send returns, until the connection closes or
// an Execute function queued after it runs.
//
// Because Send may block until the loop drains the queue, calling it from an
// event loop can deadlock; on the loop use Write.
func (c *Conn) Send(ctx context.Context, b []byte) error {
	maxQ := c.r.cfg.MaxQueued
	c.mu.Lock()
	for {
		if c.noMore {
			c.mu.Unlock()
			return ErrClosed
		}
		if c.qBytes == 0 || c.qBytes+len(b) <= maxQ {
			break
		}
		if c.space == nil {
			c.space = make(chan struct{})
		}
		ch := c.space
		c.mu.Unlock()
		c.r.stats.sendWaits.Add(1)
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		c.mu.Lock()
	}
	if len(b) == 0 {
		c.mu.Unlock()
		return nil
	}
	c.q = append(c.q, op{b: b})
	c.qBytes += len(b)
	c.queued.Store(int64(c.qBytes))
	c.mu.Unlock()
	c.schedule()
	return nil
}

// Execute runs fn on the connection's loop, in order with Send and other
// Execute calls: fn runs after every buffer sent before it has been handed to
// gnet. While the connection is stalled at HighWater, fn waits only for the
// buffers queued before it: a function with none before it needs no room in
// gnet's buffer and runs at once (runHeadFuncsOnLoop). It returns ErrClosed
// if the connection is closing or closed. A queued fn that has not run when
// the connection is aborted or closed by an error or the peer is dropped
// without running; Close drains (runs) queued functions first. Execute never
// blocks; functions do not count towards MaxQueued.
func (c *Conn) Execute(fn func()) error {
	if fn == nil {
		return nil
	}
	c.mu.Lock()
	if c.noMore {
		c.mu.Unlock()
		return ErrClosed
	}
	c.q = append(c.q, op{fn: fn})
	noBytes := c.qBytes == 0 // every buffer sent before fn is in gnet's hands
	c.mu.Unlock()
	if noBytes {
		// Not through the pump: a stalled pump waits for the stall
		// recheck, and there the loop's own writes (OnWritable) may fill
		// gnet's buffer again first, each time, for as long as they have
		// output; fn would wait for all of it (a cancel of a large message
		// came after the message). The queue holds only functions, which
		// this task runs in queue order; a later Send schedules the pump.
		_ = c.r.execute(c.el, headFuncsTask{c})
		return nil
	}
	c.schedule()
	return nil
}

// headFuncsTask runs the functions at the head of c's queue (Execute).
type headFuncsTask struct{ c *Conn }

func (t headFuncsTask) Run(context.Context) error {
	t.c.runHeadFuncsOnLoop()
	return nil
}

// runHeadFuncsOnLoop runs the functions at the head of the queue, those with
// no buffer queued before them, in order, whether or not the connection is
// stalled, and reports whether it ran any.
func (c *Conn) runHeadFuncsOnLoop() bool {
	ran := false
	for !c.dead && c.closeState.Load() != closeAbort {
		c.mu.Lock()
		if c.qHead == len(c.q) || c.q[c.qHead].fn == nil {
			c.mu.Unlock()
			return ran
		}
		fn := c.q[c.qHead].fn
		c.q[c.qHead] = op{}
		c.qHead++
		if c.qHead == len(c.q) {
			c.q = c.q[:0]
			c.qHead = 0
		}
		c.mu.Unlock()
		fn()
		ran = true
	}
	return ran
}

// schedule makes sure one pump turn is pending: the first caller after the
// pump went idle enters the loop, later callers piggyback on that turn.
func (c *Conn) schedule() {
	if c.scheduled.CompareAndSwap(false, true) {
		if c.r.execute(c.el, c.pumpTask) != nil {
			c.scheduled.Store(false)
		}
	}
}

// wakeSendersLocked releases goroutines blocked in Send.
func (c *Conn) wakeSendersLocked() {
	if c.space != nil {
		close(c.space)
		c.space = nil
	}
}

// dropQueueLocked discards everything queued and releases blocked senders.
func (c *Conn) dropQueueLocked() {
	clear(c.q[c.qHead:])
	c.q = c.q[:0]
	c.qHead = 0
	c.qBytes = 0
	c.queued.Store(0)
	c.wakeSendersLocked()
}

// takeBatch moves the next batch (at most pumpMaxIov entries, about
// batchBytes bytes) from the queue into c.batch (loop-owned).
func (c *Conn) takeBatch() []op {
	batch := c.batch[:0]
	n := 0
	c.mu.Lock()
	for c.qHead < len(c.q) && len(batch) < pumpMaxIov && n < batchBytes {
		batch = append(batch, c.q[c.qHead])
		n += len(c.q[c.qHead].b)
		c.q[c.qHead] = op{}
		c.qHead++
	}
	switch {
	case c.qHead == len(c.q):
		c.q = c.q[:0]
		c.qHead = 0
	case c.qHead >= 64 && c.qHead >= len(c.q)/2:
		// Compact so a queue that never empties does not grow forever.
		m := copy(c.q, c.q[c.qHead:])
		clear(c.q[m:])
		c.q = c.q[:m]
		c.qHead = 0
	}
	c.qBytes -= n
	c.queued.Store(int64(c.qBytes))
	if c.qBytes < c.r.cfg.MaxQueued {
		c.wakeSendersLocked()
	}
	c.mu.Unlock()
	c.batch = batch
	return batch
}

// queueEmpty reports whether nothing is queued.
func (c *Conn) queueEmpty() bool {
	c.mu.Lock()
	empty := c.qHead == len(c.q)
	c.mu.Unlock()
	return empty
}

// pumpOnLoop hands queued buffers to gnet and runs queued functions, in
// queue order. Algorithm:
//
//  1. Stop if the connection is dead; close it if Abort was called.
//  2. If gnet's outbound buffer is at HighWater, run the functions at the
//     head of the queue (they need no room), then join the loop's stalled
//     set and return with scheduled still set: the stall recheck resumes the
//     pump once the buffer drains to LowWater.
//  3. After pumpQuantum bytes, re-enter the loop through Execute (yield to
//     other connections of the loop) and return.
//  4. Take a batch; write consecutive buffers with one Writev, run functions
//     in between. Repeat.
//  5. When the queue is empty, clear scheduled and recheck the queue (a
//     Send may have slipped in before the flag cleared). A graceful close
//     then waits for gnet's buffer to drain and closes.
func (c *Conn) pumpOnLoop() {
	moved := 0
	for {
		if c.dead {
			return
		}
		if c.closeState.Load() == closeAbort {
			c.closeNowOnLoop()
			return
		}
		if c.gc.OutboundBuffered() >= c.highMark() {
			// Functions before the next buffer need no room: run them
			// now rather than after the stall (Execute).
			if c.runHeadFuncsOnLoop() {
				continue
			}
			c.pumpStalled = true
			c.loop.stall(c)
			return
		}
		if moved >= pumpQuantum {
			if c.r.execute(c.el, c.pumpTask) != nil {
				c.scheduled.Store(false)
			}
			return
		}
		batch := c.takeBatch()
		if len(batch) == 0 {
			c.scheduled.Store(false)
			if !c.queueEmpty() {
				if c.scheduled.CompareAndSwap(false, true) {
					continue
				}
				return
			}
			if c.closeState.Load() == closeGraceful {
				c.finishCloseOnLoop()
			}
			return
		}
		moved += c.runBatchOnLoop(batch)
	}
}

// runBatchOnLoop writes batch's buffers and runs its functions in order. It
// returns the bytes handed to gnet.
func (c *Conn) runBatchOnLoop(batch []op) int {
	moved := 0
	iov := c.batchIov[:0]
	defer func() {
		clear(batch)
		clear(iov[:cap(iov)])
		c.batchIov = iov[:0]
	}()
	for i := range batch {
		o := batch[i]
		if o.fn == nil {
			iov = append(iov, o.b)
			moved += len(o.b)
			continue
		}
		if len(iov) > 0 {
			c.writeBatchOnLoop(iov)
			iov = iov[:0]
		}
		if c.dead || c.closeState.Load() == closeAbort {
			return moved
		}
		o.fn()
		if c.dead || c.closeState.Load() == closeAbort {
			return moved
		}
	}
	if len(iov) > 0 {
		c.writeBatchOnLoop(iov)
	}
	return moved
}

// writeBatchOnLoop hands iov to gnet (which may rewrite iov's entries).
func (c *Conn) writeBatchOnLoop(iov [][]byte) {
	if c.dead {
		return
	}
	if ok, _ := c.tlsWriteOnLoop(iov); ok {
		return
	}
	if len(iov) == 1 {
		_, _ = c.gc.Write(iov[0])
	} else {
		_, _ = c.gc.Writev(iov)
	}
}

// finishCloseOnLoop completes a graceful close once the queue is empty:
// close now if gnet's buffer is empty, else wait in the stalled set.
func (c *Conn) finishCloseOnLoop() {
	if c.dead {
		return
	}
	c.tlsCloseNotifyOnLoop()
	if c.dead {
		return
	}
	if c.gc.OutboundBuffered() == 0 {
		c.closeNowOnLoop()
		return
	}
	c.closeWait = true
	c.loop.stall(c)
}
