package ipc

import (
	"context"
	"fmt"
	"sync"
)

// Call sends req to the destination name and waits for its response: the
// blocking form of SendRequest, for code written as most RPC code is (as
// grpc-go's Invoke or net/rpc's Call). Req and Resp are the message types
// (not pointers): ipc.Call[Ping, Pong](ctx, svc, addr, &Ping{}, 0).
//
// It returns the response, or a nil response and an error: the send's own
// error (ErrServiceStopped, ErrUnknownType, ...), a *MessageError
// (ErrConnection, ...), or ErrUnexpectedResponse when the response is not a
// Resp. When ctx ends first the request is canceled as Cancel does and Call
// returns an error matching both ErrCanceled and context.Cause(ctx); a
// response arriving later is dropped. The request completes exactly once
// either way, and Call returns only after it has.
//
// req belongs to the engine until Call returns; it may be reused then.
// The response belongs to the caller; when Resp embeds Recyclable the
// caller holds one reference on it and calls Release when done with it.
// Responses sent as ResponsePart are not returned: Call returns the
// response that completes the request (a plain response or ResponseLast).
// Use SendRequest for streamed responses.
//
// Call allocates nothing per call in steady state besides what decoding
// the response allocates (none for Recyclable types): the request's stub
// and the caller's wake-up are pooled.
func Call[Req, Resp any, PReq interface {
	*Req
	Message
}, PResp interface {
	*Resp
	Message
}](ctx context.Context, s *Service, name string, req PReq, flags Flags) (PResp, error) {
	if req == nil {
		return nil, ErrNilMessage
	}
	return call[Resp, PResp](ctx, s, toPool(name), req, flags)
}

// CallTo is Call on the connection conn (one-shot, as SendRequestTo): it
// fails with ErrConnection if that connection closes before the response.
func CallTo[Req, Resp any, PReq interface {
	*Req
	Message
}, PResp interface {
	*Resp
	Message
}](ctx context.Context, s *Service, conn Conn, req PReq, flags Flags) (PResp, error) {
	if req == nil {
		return nil, ErrNilMessage
	}
	return call[Resp, PResp](ctx, s, toConn(conn), req, flags)
}

// call sends req as a request to to through the path every send takes
// (initStub, then dispatch, as in submit), with a pooled waiter's stub, and
// waits for its response.
func call[Resp any, PResp interface {
	*Resp
	Message
}](ctx context.Context, s *Service, to target, req Message, flags Flags) (PResp, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCanceled, context.Cause(ctx))
	}
	if to.direct {
		if to.conn == nil {
			return nil, ErrConnectionGone
		}
		flags |= OneShot
	}
	w := getCallWaiter()
	if err := s.initStub(&w.st, req, flags|AwaitResponse); err != nil {
		putCallWaiter(w)
		return nil, err
	}
	if err := s.dispatch(to, &w.st); err != nil {
		putCallWaiter(w)
		return nil, err
	}
	return waitCall[Resp, PResp](ctx, s, w)
}

// waitCall waits for w's request to complete, canceling it if ctx ends
// first, and returns its typed response.
func waitCall[Resp any, PResp interface {
	*Resp
	Message
}](ctx context.Context, s *Service, w *callWaiter) (PResp, error) {
	canceled := false
	if ctx.Done() == nil {
		<-w.done
	} else {
		select {
		case <-w.done:
		case <-ctx.Done():
			canceled = true
			// The cancel, or whatever completes the request first,
			// completes it; either way it completes exactly once.
			_ = s.cancelStub(&w.st, ErrCanceled, context.Cause(ctx))
			<-w.done
		}
	}
	resp, err := w.resp, w.err
	var r PResp
	if err == nil && resp != nil {
		var ok bool
		if r, ok = resp.(PResp); !ok {
			err = fmt.Errorf("%w: response is %T, want %T", ErrUnexpectedResponse, resp, r)
			releaseMsg(resp)
		}
	}
	if canceled {
		// A cancel handed to a loop may still look at the stub after the
		// completion: this waiter is not reused (rare; left to the GC).
		w.resp, w.err = nil, nil
	} else {
		putCallWaiter(w)
	}
	return r, err
}

// callWaiter is one Call in flight: the request's stub, embedded so that a
// call takes one pooled object, and the completion it hands back to the
// caller.
//
// The stub is marked keep, so the engine never recycles it into stubPool;
// complete wakes the caller last (msgStub.call), after its last access to
// the stub, and the caller then resets and pools the whole waiter.
type callWaiter struct {
	st   msgStub
	done chan struct{} // buffered 1: the one wake never blocks the loop
	// written by the completion before wake, read by the caller after it
	resp Message
	err  error
}

var callWaiters = sync.Pool{New: func() any {
	w := &callWaiter{done: make(chan struct{}, 1)}
	w.st.keep, w.st.call = true, w
	w.st.respFn = callCompleter{}
	return w
}}

func getCallWaiter() *callWaiter {
	w := callWaiters.Get().(*callWaiter)
	w.st.respFn = callCompleter{}
	return w
}

func putCallWaiter(w *callWaiter) {
	w.st.reset()
	w.resp, w.err = nil, nil
	callWaiters.Put(w)
}

// wake hands the completion to the caller. complete calls it once, last.
func (w *callWaiter) wake() { w.done <- struct{}{} }

// callCompleter records a Call's completion in its waiter. ResponsePart
// responses (delivered while the request keeps waiting) are dropped.
type callCompleter struct{}

func (callCompleter) complete(st *msgStub, resp Message, err error) {
	if !st.completed.Load() {
		return // a ResponsePart
	}
	if resp != nil {
		// The caller's reference: the engine drops its own after this.
		if r, ok := resp.(recyclable); ok {
			r.recycler().Retain()
		}
	}
	st.call.resp, st.call.err = resp, err
}
