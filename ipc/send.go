package ipc

import (
	"context"
	"fmt"
)

// The eight ways to send, and the one path they share (Service.submit).
//
//	                 one-way           request                  with MessageID
//	by name          Send              Request, SendRequest     SendContext, SendRequestContext
//	on a connection  SendTo            SendRequestTo            SendToContext
//
// Responses (Context.Respond) take their own path: they answer a request
// on the connection it arrived on. The blocking calls, Call and CallTo
// (call.go), build their stub in a pooled waiter and share dispatch.

// Send sends m to the destination name: "host:port", or
// "host:port/name" for the connection registered as name on the relay node
// at host:port (docs/relay.md; "host:port/r2/name" crosses two relays).
// done, if not nil, is
// called once: with nil when the message has been written to the
// connection, or with an error. When Send returns an error, done is never
// called.
func (s *Service) Send(name string, m Message, flags Flags, done func(err error)) error {
	_, err := s.submit(nil, toPool(name), m, flags, done, respCallback{})
	return err
}

// Request sends req to name and calls cb once, with the response or an
// error. It is the untyped form of SendRequest.
func (s *Service) Request(name string, req Message, flags Flags, cb func(resp Message, err error)) error {
	_, err := s.submit(nil, toPool(name), req, flags, nil, untypedResp(cb))
	return err
}

// SendRequest sends req to the destination name and calls cb once, on an
// event loop: with the response, or with a nil response and an error
// (ErrConnection, ErrCanceled, ...; see MessageError). When SendRequest
// returns an error, cb is never called.
func SendRequest[Req, Resp any, PReq interface {
	*Req
	Message
}, PResp interface {
	*Resp
	Message
}](s *Service, name string, req PReq, flags Flags, cb func(req PReq, resp PResp, err error)) error {
	_, err := s.submit(nil, toPool(name), req, flags, nil, typedResp(cb))
	return err
}

// SendContext is Send with a MessageID for Cancel, canceled also when ctx
// ends (use context.WithDeadline for a per-message deadline). The message
// completes with an error matching both ErrCanceled and context.Cause(ctx)
// when ctx ends first.
func (s *Service) SendContext(ctx context.Context, name string, m Message, flags Flags, done func(err error)) (MessageID, error) {
	return s.submit(ctx, toPool(name), m, flags, done, respCallback{})
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
	return s.submit(ctx, toPool(name), req, flags, nil, typedResp(cb))
}

// SendTo sends m on the connection conn, one-shot: it fails at once, with
// ErrConnection, if that connection closes first. done is called once, as
// for Send.
func (s *Service) SendTo(conn Conn, m Message, flags Flags, done func(err error)) error {
	_, err := s.submit(nil, toConn(conn), m, flags, done, respCallback{})
	return err
}

// SendRequestTo sends req on the connection conn and calls cb once with
// the response or an error, as SendRequest does. It is one-shot.
func SendRequestTo[Req, Resp any, PReq interface {
	*Req
	Message
}, PResp interface {
	*Resp
	Message
}](s *Service, conn Conn, req PReq, flags Flags, cb func(req PReq, resp PResp, err error)) error {
	_, err := s.submit(nil, toConn(conn), req, flags, nil, typedResp(cb))
	return err
}

// SendToContext is SendTo with a MessageID for Cancel, canceled also when
// ctx ends (see SendContext).
func (s *Service) SendToContext(ctx context.Context, conn Conn, m Message, flags Flags, done func(err error)) (MessageID, error) {
	return s.submit(ctx, toConn(conn), m, flags, done, respCallback{})
}

// target is where a send goes: a pool by name (and a relay path), or one
// connection.
type target struct {
	name   string
	path   string // relay path after the pool name; "" for a direct message
	conn   *conn
	direct bool
}

func toPool(name string) target {
	pool, path := splitDestination(name)
	return target{name: pool, path: path}
}

func toConn(c Conn) target { return target{conn: c.c, direct: true} }

// respCallback is a request's callback and its completer; the zero value
// means a one-way send.
type respCallback struct {
	fn  any // the callback, for fnC
	fnC completer
	nil bool // the caller passed a nil callback
}

func typedResp[Req, Resp any, PReq interface {
	*Req
	Message
}, PResp interface {
	*Resp
	Message
}](cb func(req PReq, resp PResp, err error)) respCallback {
	return respCallback{fn: cb, fnC: typedCompleter[Req, Resp, PReq, PResp]{}, nil: cb == nil}
}

func untypedResp(cb func(resp Message, err error)) respCallback {
	return respCallback{fn: cb, fnC: untypedCompleter{}, nil: cb == nil}
}

// dispatch hands a built stub to its pool or connection (submit, and
// Call with its pooled stub). On error the stub was not taken.
func (s *Service) dispatch(to target, st *msgStub) error {
	if to.direct {
		return to.conn.sendDirect(st)
	}
	st.url, st.credit = to.path, to.path != ""
	return s.sendToPool(to.name, st)
}

// submit is the one path of every send: it checks the call (ctx not done,
// connection handle set, request callback set), builds the stub (a request
// when resp is not the zero value; connection-directed sends are one-shot), hands it to
// the pool or the connection, and, with a ctx, ties the message to it and
// returns its MessageID. When it returns an error, no callback is ever
// called.
func (s *Service) submit(ctx context.Context, to target, m Message, flags Flags, done func(error), resp respCallback) (MessageID, error) {
	if ctx != nil {
		if err := ctx.Err(); err != nil {
			return MessageID{}, fmt.Errorf("%w: %w", ErrCanceled, context.Cause(ctx))
		}
	}
	if to.direct {
		if to.conn == nil {
			return MessageID{}, ErrConnectionGone
		}
		flags |= OneShot
	}
	if resp.fnC != nil {
		if resp.nil {
			return MessageID{}, fmt.Errorf("%w: nil callback", ErrNilMessage)
		}
		flags |= AwaitResponse
	} else {
		flags &^= AwaitResponse
	}
	st, err := s.newStub(m, flags)
	if err != nil {
		return MessageID{}, err
	}
	st.done = done
	if resp.fnC != nil {
		st.onResp, st.respFn = resp.fn, resp.fnC
	}
	if ctx == nil {
		return MessageID{}, s.dispatch(to, st)
	}
	// A MessageID names the stub and its generation (cancel.go,
	// "Generations"); the engine holds a reference until completion.
	st.ided = true
	id := MessageID{st, st.gen.Load()}
	if ctx.Done() == nil { // nothing to watch: the engine's reference only
		st.refs.Store(1)
		if err := s.dispatch(to, st); err != nil {
			return MessageID{}, err
		}
		return id, nil
	}
	// And this call's, which keeps the stub from being reused until its
	// context is watched.
	st.watchable = true
	st.refs.Store(2)
	if err := s.dispatch(to, st); err != nil {
		st.release()
		return MessageID{}, err
	}
	s.watch(ctx, id)
	st.release()
	return id, nil
}
