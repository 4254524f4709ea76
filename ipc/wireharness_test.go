package ipc

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// wireEnd is one side of a socket-free connection: the engine's real writer
// and reader, with stubs built by the same code as Service's sends
// (newStub) and Context.RespondFlags (responseStub). The reader's events
// are handled as conn handles them: a response completes the request it
// answers (writer.takeResponse); anything else is recorded with the Context
// a handler would get, to answer with respond.
//
// It exists so that the byte-level tests (captures, docs/protocol.md
// examples, fuzz seeds) check what the engine really writes and reads, not
// a parallel codec.
type wireEnd struct {
	t   testing.TB
	svc *Service
	c   *conn // no socket: only svc and w are set, for Context
	w   *writer
	r   *reader

	trace    []string  // what the reader reported, in order
	received []Context // the Context of each message that is not a response
	msgs     []Message // the messages of received
	resps    []Message // responses that completed one of our requests
}

// docProtocol registers the message types of docs/protocol.md and of the
// SolidFrame captures: 1 Echo (one string), 2 Lookup and 3 LookupResult,
// so that every documented packet decodes.
func docProtocol(tb testing.TB) *Protocol {
	tb.Helper()
	p := NewProtocol()
	require.NoError(tb, Register(p, 1, func(Context, *docEcho) {}))
	require.NoError(tb, Register(p, 2, func(Context, *docLookup) {}))
	require.NoError(tb, Register(p, 3, func(Context, *docLookupResult) {}))
	return p
}

// newWireEnd returns one side with cfg (defaults applied by the caller).
func newWireEnd(tb testing.TB, cfg *Config) *wireEnd {
	tb.Helper()
	e := &wireEnd{t: tb, svc: &Service{cfg: *cfg}}
	e.c = &conn{svc: e.svc}
	e.w = newWriter(&e.svc.cfg)
	e.c.w = e.w
	e.r = newReader(&e.svc.cfg, e)
	return e
}

// newWirePair returns a client and a server side sharing the doc protocol
// and default limits.
func newWirePair(tb testing.TB) (client, server *wireEnd) {
	tb.Helper()
	cfg := Config{Protocol: docProtocol(tb)}
	c, err := cfg.withDefaults()
	require.NoError(tb, err)
	return newWireEnd(tb, &c), newWireEnd(tb, &c)
}

// request queues req with flags (AwaitResponse added) as Service.Request
// does; the response lands in e.resps.
func (e *wireEnd) request(req Message, flags Flags) *msgStub {
	e.t.Helper()
	st, err := e.svc.newStub(req, flags|AwaitResponse)
	require.NoError(e.t, err)
	st.onResp, st.respFn = func(resp Message, err error) {
		if err == nil {
			e.resps = append(e.resps, resp)
		}
	}, untypedCompleter{}
	require.True(e.t, e.w.enqueue(st), "writer full")
	return st
}

// send queues a one-way message as Service.Send does.
func (e *wireEnd) send(m Message, flags Flags) *msgStub {
	e.t.Helper()
	st, err := e.svc.newStub(m, flags&^AwaitResponse)
	require.NoError(e.t, err)
	require.True(e.t, e.w.enqueue(st), "writer full")
	return st
}

// respond answers the k-th received message as Context.Respond does.
func (e *wireEnd) respond(k int, resp Message) {
	e.t.Helper()
	st, err := e.received[k].responseStub(resp, 0, nil)
	require.NoError(e.t, err)
	require.True(e.t, e.w.enqueue(st), "writer full")
}

// output runs the writer until it has nothing to send, with packets of at
// most size bytes, and returns the bytes; written messages complete as
// conn.runCompletions completes them.
func (e *wireEnd) output(size int) []byte {
	e.t.Helper()
	var out []byte
	buf := make([]byte, size)
	for e.w.hasOutput() {
		n, err := e.w.fill(buf)
		require.NoError(e.t, err)
		require.NotZero(e.t, n, "writer has output but wrote nothing")
		out = append(out, buf[:n]...)
	}
	for _, st := range e.w.done {
		st.complete(nil, nil)
	}
	e.w.done = e.w.done[:0]
	for _, f := range e.w.failed {
		f.st.fail(f.kind, f.cause)
	}
	e.w.failed = e.w.failed[:0]
	return out
}

// input feeds b to the reader in one piece and requires it to be consumed
// whole.
func (e *wireEnd) input(b []byte) {
	e.t.Helper()
	n, err := e.r.feed(b)
	require.NoError(e.t, err)
	require.Equal(e.t, len(b), n, "reader left bytes unconsumed")
}

func (e *wireEnd) onHeader(h *msgHeader) bool {
	e.trace = append(e.trace, e.headerLine(h))
	return false
}

func (*wireEnd) headerLine(h *msgHeader) string {
	return fmt.Sprintf("header flags=%v url=%q sender=%d,%d recipient=%d,%d",
		h.flags, h.url, h.senderIndex, h.senderUnique, h.recipientIndex, h.recipientUnique)
}

func (e *wireEnd) onMessage(h *msgHeader, m Message) {
	e.trace = append(e.trace, fmt.Sprintf("message %s", docMessageString(m)))
	if isBack(h.flags) && h.recipientIndex != 0 {
		st, _ := e.w.takeResponse(h.recipientIndex, h.recipientUnique, h.flags&ResponsePart != 0)
		if st != nil {
			st.complete(m, nil)
			return
		}
	}
	e.received = append(e.received, Context{c: e.c, flags: h.flags, senderIndex: h.senderIndex, senderUnique: h.senderUnique})
	e.msgs = append(e.msgs, m)
}

func (e *wireEnd) onCancelRequest(index, unique uint64) {
	e.trace = append(e.trace, fmt.Sprintf("CancelRequest index=%d unique=%d", index, unique))
	e.w.cancelBySlot(index, unique)
}

func (e *wireEnd) onCancelMessage(slot uint32) {
	e.trace = append(e.trace, fmt.Sprintf("CancelMessage slot=%d", slot))
}

func (e *wireEnd) onKeepAlive() { e.trace = append(e.trace, "KeepAlive") }

// docMessageString prints the doc example messages.
func docMessageString(m Message) string {
	switch m := m.(type) {
	case *docEcho:
		return fmt.Sprintf("Echo{text=%q}", m.Text)
	case *docLookup:
		return fmt.Sprintf("Lookup{key=%q limit=%d tags=%q}", m.Key, m.Limit, m.Tags)
	case *docLookupResult:
		return fmt.Sprintf("LookupResult{found=%t value=%d score=%g}", m.Found, m.Value, m.Score)
	}
	return fmt.Sprintf("%T", m)
}

// primeSlot makes the writer's next request go out from writer slot
// `slot` with unique `unique`, the real way: requests occupy the lower
// slots, and the target slot is used and answered unique times (a freed
// slot is reused first). Their bytes are discarded.
func (e *wireEnd) primeSlot(slot int, unique uint32) {
	e.t.Helper()
	for range slot {
		e.request(&docEcho{Text: "filler"}, 0)
	}
	for range unique {
		st := e.request(&docEcho{Text: "cycle"}, 0)
		require.Equal(e.t, int32(slot), st.slot)
		e.output(e.svc.cfg.BufferSize)
		got, _ := e.w.takeResponse(uint32(slot)+1, e.w.slots[slot].unique, false)
		require.Same(e.t, st, got)
		st.complete(&docEcho{}, nil)
	}
	e.output(e.svc.cfg.BufferSize)
	e.resps = nil
	// The next slot is the top of the free stack, or a new one when none
	// is free (the writer grows its slot table on demand).
	next := int32(len(e.w.slots))
	if n := len(e.w.free); n > 0 {
		next = e.w.free[n-1]
	}
	require.Equal(e.t, int32(slot), next, "slot %d is next", slot)
	if slot < len(e.w.slots) {
		require.Equal(e.t, unique, e.w.slots[slot].unique)
	} else {
		require.Zero(e.t, unique)
	}
}
