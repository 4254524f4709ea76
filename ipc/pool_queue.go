package ipc

// The pool's queue: sending into it, connections pulling from it, and
// canceling a message still in it.

import (
	"slices"
)

// send queues st and wakes a connection or dials one.
func (p *pool) send(st *msgStub) error {
	p.mu.Lock()
	switch p.state.Load() {
	case poolOpen:
	case poolStopped:
		p.mu.Unlock()
		return ErrServiceStopped
	default:
		p.mu.Unlock()
		return ErrPoolClosing
	}
	if len(p.queue) >= p.svc.cfg.MaxQueuedMessages {
		p.mu.Unlock()
		return ErrPoolFull
	}
	p.seq++
	st.seq, st.queued = p.seq, true
	p.queue = append(p.queue, st)
	p.queuedN.Store(int32(len(p.queue)))
	var wake *conn
	if st.flags&Synchronous != 0 {
		if wake = p.mainLocked(); wake != nil {
			pc := &p.conns[p.indexLocked(wake)]
			pc.idle = false
			if pc.retired {
				// A retiring main keeps its role until its synchronous
				// messages are done (conn.holdsSync) but takes no more:
				// make sure a successor comes.
				p.maybeDialLocked()
			}
		}
	} else {
		wake = p.takeIdleLocked()
	}
	if wake == nil {
		p.maybeDialLocked()
	}
	p.mu.Unlock()
	// A connection whose loop is running its handlers (this send may come
	// from one of them) pulls the queue when they return: no wake-up needed.
	if wake != nil && !wake.dispatching.Load() {
		wake.rc.Wake()
	}
	return nil
}

// pull moves messages from the queue into c's writer (loop of c), oldest
// first, while the writer accepts them. Synchronous messages go only to the
// main connection; other connections pass over them. It takes nothing and
// returns false once c's address has left the pool's answer (c.addrGone,
// set under p.mu): c must retire.
func (p *pool) pull(c *conn) bool {
	if p.queuedN.Load() == 0 && p.isIdle(c) {
		return true
	}
	p.mu.Lock()
	if c.addrGone.Load() {
		p.mu.Unlock()
		return false
	}
	main := p.mainLocked() == c
	k, full, left := 0, false, false
	var canceled []*msgStub
	for _, st := range p.queue {
		switch {
		case st.cancelAsked.Load():
			// Never the case today (a queued message is canceled by removing
			// it), kept so that a canceled message can never be sent.
			st.queued = false
			canceled = append(canceled, st)
		case full || (st.flags&Synchronous != 0 && !main):
			left = left || st.flags&Synchronous == 0 || main
			p.queue[k] = st
			k++
		case c.w.enqueue(st):
			st.queued, st.owner = false, c
		default:
			full, left = true, true
			p.queue[k] = st
			k++
		}
	}
	clear(p.queue[k:])
	p.queue = p.queue[:k]
	p.queuedN.Store(int32(k))
	if i := p.indexLocked(c); i >= 0 {
		p.conns[i].idle = !left
	}
	if left {
		p.maybeDialLocked()
	}
	p.mu.Unlock()
	for _, st := range canceled {
		st.failCanceled()
	}
	return true
}

// cancel removes st from the queue if it is still there and reports
// whether it did; otherwise it marks st canceled (cancelAsked, under p.mu,
// which connClosed reads under p.mu too) and returns the connection that
// took it.
func (p *pool) cancel(st *msgStub) (removed bool, owner *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !st.queued {
		if st.owner != nil && !st.completed.Load() {
			st.cancelAsked.Store(true)
		}
		return false, st.owner
	}
	for i, x := range p.queue {
		if x == st {
			p.queue = slices.Delete(p.queue, i, i+1)
			p.queuedN.Store(int32(len(p.queue)))
			st.queued = false
			return true, nil
		}
	}
	return false, nil
}

func (p *pool) takeOneShotLocked() []*msgStub {
	var out []*msgStub
	k := 0
	for _, st := range p.queue {
		if st.flags&OneShot != 0 {
			st.queued = false
			out = append(out, st)
			continue
		}
		p.queue[k] = st
		k++
	}
	clear(p.queue[k:])
	p.queue = p.queue[:k]
	p.queuedN.Store(int32(k))
	return out
}
