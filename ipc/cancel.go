package ipc

import (
	"context"
)

// MessageID identifies a message sent with SendContext or
// SendRequestContext, for Cancel. The zero value identifies nothing. It
// may be kept after its message completed: Cancel then returns
// ErrUnknownMessage, also once the engine has reused the message's state
// for another message.
type MessageID struct {
	st  *msgStub
	gen uint64 // st's generation when the message was sent
}

// Generations. The stub of a message with a MessageID is pooled as every
// other stub is, so a MessageID may outlive its message: a Cancel (or the
// context's watch) may run after the message completed and its stub went
// on to carry another message. A MessageID therefore names the stub and
// its generation, and a cancel acts on the stub only while holding a
// reference taken for that generation (msgStub.acquire): the stub goes
// back to the pool, and its generation steps, only once its last holder
// (the engine until completion, the sender until it has watched its
// context, each cancel in progress, each cancel handed to a loop) has
// released it. A late cancel finds the reference count zero or the
// generation moved on and returns ErrUnknownMessage: it can never cancel
// the stub's next message. A stub completed on a path that does not
// recycle (a failure, a cancel) is simply left to the GC with its count.
// The generation is 64 bits wide and never wraps in practice.

// Valid reports whether id identifies a message.
func (id MessageID) Valid() bool { return id.st != nil }

// Cancel stops a message:
//
//   - still queued: it completes with ErrCanceled and is never sent;
//   - being written: the rest is not sent, the peer is told to drop the part
//     it received (CancelMessage), and it completes with ErrCanceled;
//   - a request waiting for its response: it completes with ErrCanceled; the
//     response, when it arrives, is dropped and the peer is asked to stop
//     sending it (CancelRequest).
//
// Cancel returns ErrUnknownMessage when the message has completed already.
// Otherwise the message completes with ErrCanceled, unless it completes
// otherwise first (Cancel and completion race; the callback tells which).
func (s *Service) Cancel(id MessageID) error {
	return s.cancelMsg(id, ErrCanceled, nil)
}

// cancelMsg cancels the message id names, if it is still that stub's
// message (see Generations).
func (s *Service) cancelMsg(id MessageID, kind, cause error) error {
	st := id.st
	if st == nil || !st.acquire(id.gen) {
		return ErrUnknownMessage
	}
	defer st.release()
	return s.cancelStub(st, kind, cause)
}

// cancelStub cancels st, which the caller keeps from being reused: by a
// reference when st is ided (cancelMsg), as the waiting caller of a Call
// otherwise (waitCall).
func (s *Service) cancelStub(st *msgStub, kind, cause error) error {
	if st.completed.Load() {
		return ErrUnknownMessage
	}
	s.counters.cancels.Add(1)
	// What the message completes with if a close overtakes this cancel
	// (failCanceled); stored before cancelAsked is.
	st.cancelWhy.CompareAndSwap(nil, &cancelReason{kind, cause})
	var owner *conn
	if st.pool != nil {
		removed, c := st.pool.cancel(st)
		if removed {
			st.fail(kind, cause)
			return nil
		}
		owner = c
	} else {
		owner = st.owner // set once, before the message is published
		if owner != nil && owner.cancelDirect(st) {
			st.fail(kind, cause)
			return nil
		}
	}
	if owner == nil || st.completed.Load() {
		return ErrUnknownMessage
	}
	// cancelAsked is set by now (pool.cancel or cancelDirect, under the
	// lock the close path reads it under): if the connection closes before
	// cancelOnLoop runs, the message fails as canceled and is not resent.
	ided := st.ided
	if ided {
		st.refs.Add(1) // the loop's, released once cancelOnLoop has run
	}
	if err := owner.rc.Execute(func() {
		owner.cancelOnLoop(st, kind, cause)
		if ided {
			st.release()
		}
	}); err != nil {
		// The connection is closing: its close completes the message.
		if ided {
			st.release()
		}
		return nil
	}
	return nil
}

// watch ties st to ctx: when ctx ends first, the message is canceled with
// ErrCanceled caused by context.Cause(ctx) (for a deadline,
// context.DeadlineExceeded).
//
// The caller holds a reference on id's stub (submit): it is not reused
// before watch returns.
func (s *Service) watch(ctx context.Context, id MessageID) {
	if ctx.Done() == nil {
		return
	}
	st := id.st
	stop := context.AfterFunc(ctx, func() {
		_ = s.cancelMsg(id, ErrCanceled, context.Cause(ctx))
	})
	st.stopWatch = stop
	if !st.watched.CompareAndSwap(watchNone, watchSet) {
		stop() // completed first (watchDone)
	}
}
