package ipc

import (
	"context"
)

// MessageID identifies a message sent with SendContext or
// SendRequestContext, for Cancel. The zero value identifies nothing.
type MessageID struct {
	st *msgStub
}

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

func (s *Service) cancelMsg(id MessageID, kind, cause error) error {
	st := id.st
	if st == nil || st.completed.Load() {
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
	if err := owner.rc.Execute(func() { owner.cancelOnLoop(st, kind, cause) }); err != nil {
		// The connection is closing: its close completes the message.
		return nil
	}
	return nil
}

// watch ties st to ctx: when ctx ends first, the message is canceled with
// ErrCanceled caused by context.Cause(ctx) (for a deadline,
// context.DeadlineExceeded).
func (s *Service) watch(ctx context.Context, st *msgStub) {
	if ctx.Done() == nil {
		return
	}
	id := MessageID{st}
	stop := context.AfterFunc(ctx, func() {
		_ = s.cancelMsg(id, ErrCanceled, context.Cause(ctx))
	})
	st.stopWatch.Store(&stop)
	if st.completed.Load() {
		stop()
	}
}
