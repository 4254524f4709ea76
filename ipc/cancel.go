package ipc

import (
	"context"
	"fmt"
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
	st.cancelWhy.CompareAndSwap(nil, &cancelReason{kind, cause})
	st.cancelAsked.Store(true)
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

// SendContext is Send with a MessageID for Cancel, canceled also when ctx
// ends (use context.WithDeadline for a per-message deadline). The message
// completes with an error matching both ErrCanceled and context.Cause(ctx)
// when ctx ends first.
func (s *Service) SendContext(ctx context.Context, name string, m Message, flags Flags, done func(err error)) (MessageID, error) {
	if err := ctx.Err(); err != nil {
		return MessageID{}, fmt.Errorf("%w: %w", ErrCanceled, context.Cause(ctx))
	}
	st, err := s.newStub(m, flags&^AwaitResponse)
	if err != nil {
		return MessageID{}, err
	}
	st.done, st.keep = done, true
	if err := s.sendToPool(name, st); err != nil {
		return MessageID{}, err
	}
	s.watch(ctx, st)
	return MessageID{st}, nil
}

// SendRequestContext is SendRequest with a MessageID for Cancel, canceled
// also when ctx ends (see SendContext).
func SendRequestContext[Req, Resp any, PReq interface {
	*Req
	Message
}, PResp interface {
	*Resp
	Message
}](ctx context.Context, s *Service, name string, req PReq, flags Flags, cb func(req PReq, resp PResp, err error)) (MessageID, error) {
	if err := ctx.Err(); err != nil {
		return MessageID{}, fmt.Errorf("%w: %w", ErrCanceled, context.Cause(ctx))
	}
	if cb == nil {
		return MessageID{}, fmt.Errorf("%w: nil callback", ErrNilMessage)
	}
	st, err := s.newStub(req, flags|AwaitResponse)
	if err != nil {
		return MessageID{}, err
	}
	st.onResp, st.respFn, st.keep = cb, typedCompleter[Req, Resp, PReq, PResp]{}, true
	if err := s.sendToPool(name, st); err != nil {
		return MessageID{}, err
	}
	s.watch(ctx, st)
	return MessageID{st}, nil
}

// SendToContext is SendTo with a MessageID for Cancel, canceled also when
// ctx ends (see SendContext).
func (s *Service) SendToContext(ctx context.Context, conn Conn, m Message, flags Flags, done func(err error)) (MessageID, error) {
	if err := ctx.Err(); err != nil {
		return MessageID{}, fmt.Errorf("%w: %w", ErrCanceled, context.Cause(ctx))
	}
	if conn.c == nil {
		return MessageID{}, ErrConnectionGone
	}
	st, err := s.newStub(m, (flags&^AwaitResponse)|OneShot)
	if err != nil {
		return MessageID{}, err
	}
	st.done, st.keep = done, true
	if err := conn.c.sendDirect(st); err != nil {
		return MessageID{}, err
	}
	s.watch(ctx, st)
	return MessageID{st}, nil
}
