package ipc

// Context describes a received message to its handler: the connection it
// arrived on and the request id to answer. It is a small value; copies may
// be kept and used from any goroutine, for example to respond later.
type Context struct {
	c            *conn
	flags        Flags
	senderIndex  uint32
	senderUnique uint32
}

// Flags returns the flags the message arrived with.
func (x Context) Flags() Flags { return x.flags }

// Conn returns the connection the message arrived on.
func (x Context) Conn() Conn { return Conn{x.c} }

// IsRequest reports whether the sender awaits a response.
func (x Context) IsRequest() bool { return x.flags&AwaitResponse != 0 }

// RemoteAddr returns the peer's address.
func (x Context) RemoteAddr() string {
	if x.c == nil || x.c.rc == nil {
		return ""
	}
	return x.c.remote
}

// Respond sends resp on the connection the message arrived on, as the
// response to it. It may be called from any goroutine, once per request
// (or several times with ResponsePart flags through RespondFlags). It fails
// with ErrConnectionGone when the connection has closed and with
// ErrUnknownType when resp's type is not registered.
func (x Context) Respond(resp Message) error {
	return x.RespondFlags(resp, 0, nil)
}

// RespondFlags is Respond with extra flags (ResponsePart, ResponseLast,
// AwaitResponse for a conversation) and a completion callback called once
// the response is written or has failed. Responses with ResponsePart or
// ResponseLast are sent Synchronous, so the parts arrive in order.
func (x Context) RespondFlags(resp Message, flags Flags, done func(error)) error {
	if x.c == nil {
		return ErrConnectionGone
	}
	st, err := x.responseStub(resp, flags, done)
	if err != nil {
		return err
	}
	return x.c.sendDirect(st)
}

// responseStub returns the stub of resp as the response to x's message:
// the flags, trip state and recipient id that RespondFlags sends with.
func (x Context) responseStub(resp Message, flags Flags, done func(error)) (*msgStub, error) {
	svc := x.c.svc
	if flags&(ResponsePart|ResponseLast) != 0 {
		// The parts of one response go one at a time, in order: a small
		// last part must not overtake a large part and complete the
		// request before it (SolidFrame forces Synchronous too).
		flags |= Synchronous
	}
	st, err := svc.newStub(resp, flags|Response|OneShot)
	if err != nil {
		return nil, err
	}
	st.state = nextState(x.flags & stateFlags)
	st.recipIndex, st.recipUnique = x.senderIndex, x.senderUnique
	st.credit = x.flags&Relayed != 0 // it goes back through the relay
	st.done = done
	return st, nil
}
