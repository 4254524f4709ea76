package ipc

// One relayed message: the chunks that arrived from its source and wait
// for its destination's writer, and the stub that carries it in that
// writer (docs/relay.md, "A relayed message").

import (
	"sync"
	"sync/atomic"
)

// relayChunk is the data of one received body chunk, held in its source's
// relayBuf until the destination's writer has copied it.
type relayChunk struct {
	buf  *relayBuf // nil for an empty chunk
	data []byte
	end  bool // the message's last chunk
}

// relayMsg is one message crossing a relay node, in one direction (a
// response is another relayMsg). The source connection's loop pushes
// chunks; the destination connection's loop, through the stub's writer
// slot, takes them.
//
// Ownership: relayMsgs are pooled (relayMsgPool), so a pointer to one may
// be used only by a holder of one of its references (refs). A reference
// is taken only by a goroutine that holds another one, so the count never
// rises again from zero; the last unref returns the message to the pool.
// The references:
//   - the reader slot's (relayConn.in), dropped when the slot lets go of
//     the message (its end chunk, a CancelMessage, the close);
//   - the route's (relayConn.routes), dropped once it is routed;
//   - the stub's, from newRelayStub to the end of its completion
//     (msgStub.complete): wherever the stub is (placeholder, direct
//     queue, writer slot, completion list) it is reachable only through
//     its holder, which completes it;
//   - one per mailbox entry naming it (relayMail), dropped once the
//     owning loop handled the entry, or dropped it (closed);
//   - one taken by whoever acts on it from another goroutine for the time
//     of that act (deliver, closeOnLoop's abandon).
type relayMsg struct {
	// refs counts the references above (relay_msg.go, "Ownership").
	refs atomic.Int32

	// immutable once routed
	src *conn // the connection it arrives on
	// srcSlot is its reader slot on src; origIndex/origUnique its sender
	// request id there: where a response goes back to and what a
	// CancelRequest upstream names.
	srcSlot               uint32
	origIndex, origUnique uint32
	key                   string   // the name it is routed by; "" for an answer
	back                  *conn    // an answer's destination: where its request came from
	st                    *msgStub // the stub that writes it on the destination: &stub
	// stub is st's storage: a relayed message and its stub are one
	// allocation (newRelayMsg).
	stub msgStub
	// windowed: its source windows it (docs/protocol.md §7b; from its
	// header or a later WindowStart); the relay returns its window as the
	// destination takes its bytes.
	windowed atomic.Bool

	// tail is the buffer its next chunk's data is appended to (owned by
	// the source's loop; relay_credit.go).
	tail *relayBuf
	// taken counts bytes the destination copied whose window is not yet
	// returned to the source (relay_grant.go).
	taken atomic.Int64

	// head is how many bytes of q[0] the destination's writer has copied;
	// tookAny, whether it has copied any byte yet (owned by the
	// destination's loop).
	head    int
	tookAny bool

	mu sync.Mutex // guards what follows; never held across a call out
	// dst is the destination connection, set when delivered.
	dst *conn
	// q holds the chunks not yet copied, oldest first; bounded by the
	// message's window or its source's SourceBytes. It starts in qbuf, so
	// that a small message's one or two chunks allocate nothing more.
	q    []relayChunk
	qbuf [2]relayChunk
	// parked: the destination's writer found q empty and waits to be told
	// (relayConn.postUnpark) that a chunk came.
	parked bool
	// done: the stub completed; later chunks are dropped.
	done bool
	// srcGone: the source abandoned the message (CancelMessage, or it
	// closed): nothing is to be sent back to it.
	srcGone bool
}

// relayMsgPool recycles relayed messages (with their stubs): a relay
// forwards without an allocation per message in steady state.
var relayMsgPool = sync.Pool{New: func() any { rm := new(relayMsg); rm.q = rm.qbuf[:0]; return rm }}

// newRelayMsg returns a relayed message arriving from src in reader slot
// slot, sent with sender id (index, unique), routed by key ("" for an
// answer). It holds three references: the reader slot's, the route's and
// the stub's (newRelayStub makes the stub).
func newRelayMsg(src *conn, slot, index, unique uint32, key string) *relayMsg {
	rm := relayMsgPool.Get().(*relayMsg)
	rm.src, rm.srcSlot, rm.origIndex, rm.origUnique, rm.key = src, slot, index, unique, key
	rm.refs.Store(3)
	return rm
}

// ref takes a reference; the caller holds one already.
func (rm *relayMsg) ref() { rm.refs.Add(1) }

// unref drops a reference; the last one puts the message back in the
// pool, emptied (any goroutine).
func (rm *relayMsg) unref() {
	if n := rm.refs.Add(-1); n > 0 {
		return
	} else if n < 0 {
		panic("ipc: relayMsg reference count below zero")
	}
	rm.src, rm.back, rm.st, rm.dst = nil, nil, nil, nil
	rm.srcSlot, rm.origIndex, rm.origUnique, rm.key = 0, 0, 0, ""
	rm.stub = msgStub{}
	rm.windowed.Store(false)
	rm.tail = nil
	rm.taken.Store(0)
	rm.head, rm.tookAny = 0, false
	clear(rm.q[:cap(rm.q)])
	rm.q = rm.q[:0]
	rm.parked, rm.done, rm.srcGone = false, false, false
	relayMsgPool.Put(rm)
}

// newRelayStub returns the stub that writes rm on its destination: the
// received header's flags (state bits kept, Relayed added), the rest of the
// relay path, and the given recipient id. It is counted in flight on svc
// until it completes, through relayCompleter, exactly once.
func newRelayStub(svc *Service, rm *relayMsg, h *msgHeader, path string, recipIndex, recipUnique uint32) *msgStub {
	st := &rm.stub
	*st = msgStub{
		svc:         svc,
		flags:       h.flags & (userFlags | Response) &^ localFlags,
		state:       h.flags&stateFlags | Relayed,
		recipIndex:  recipIndex,
		recipUnique: recipUnique,
		onResp:      rm,
		respFn:      relayCompleter{},
		keep:        true, // part of rm: recycled with it (relayMsg.unref)
		url:         path,
		credit:      true,
		relay:       rm,
	}
	rm.st = st
	svc.messageQueued()
	return st
}

// relayCompleter completes a relay stub: the relayed message is over, on
// this side (relayMsg.finish).
type relayCompleter struct{}

func (relayCompleter) complete(st *msgStub, _ Message, err error) {
	st.onResp.(*relayMsg).finish(err)
}

// push queues a chunk from the source (its loop); false when the message
// is over on the destination side and the chunk is to be dropped.
func (rm *relayMsg) push(ch relayChunk) bool {
	rm.mu.Lock()
	if rm.done {
		rm.mu.Unlock()
		return false
	}
	rm.q = append(rm.q, ch)
	wake := rm.parked
	rm.parked = false
	dst := rm.dst
	rm.mu.Unlock()
	if wake {
		dst.relay.postUnpark(rm)
	}
	return true
}

// front returns the oldest chunk, or parks the message when there is none
// (destination's loop).
func (rm *relayMsg) front() (relayChunk, bool) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if len(rm.q) == 0 {
		rm.parked = true
		return relayChunk{}, false
	}
	return rm.q[0], true
}

// pop drops the oldest chunk, copied (destination's loop).
func (rm *relayMsg) pop() {
	rm.mu.Lock()
	n := copy(rm.q, rm.q[1:])
	rm.q[n] = relayChunk{}
	rm.q = rm.q[:n]
	rm.mu.Unlock()
}

// finish runs once, when the stub completes: the chunks left are released,
// and if the message failed while its source still cares, the source's
// loop sends CancelRequest upstream for it. The stub's reference is
// dropped after (msgStub.complete).
func (rm *relayMsg) finish(err error) {
	rm.mu.Lock()
	rm.done = true // from now on nobody else touches q
	q := rm.q
	gone := rm.srcGone
	rm.mu.Unlock()
	for i := range q {
		if q[i].buf != nil {
			q[i].buf.release()
		}
		q[i] = relayChunk{}
	}
	rm.mu.Lock()
	rm.q = q[:0] // its capacity is kept for the next use
	rm.mu.Unlock()
	src := rm.src.relay
	src.forget(rm)
	if err != nil && !gone {
		src.postCancelUp(reqID{uint64(rm.origIndex), uint64(rm.origUnique)})
	}
}

// abandon is the source giving the message up (its loop; the caller
// holds a reference): it is canceled wherever it is, and its destination
// told to drop what it has (CancelMessage) or to refuse the response
// (CancelRequest).
func (rm *relayMsg) abandon(e *relayEngine) {
	rm.mu.Lock()
	if rm.done || rm.srcGone {
		rm.mu.Unlock()
		return
	}
	rm.srcGone = true
	dst := rm.dst
	rm.mu.Unlock()
	if dst == nil {
		if e.unwait(rm.st) {
			rm.st.fail(ErrCanceled, ErrRelaySourceGone)
		}
		// Otherwise being delivered: deliver checks srcGone after
		// queueing and cancels it.
		return
	}
	dst.relay.postCancel(rm)
}

// deliver hands st to its destination c. The caller holds a reference to
// st's message (the route's, or the stub's while it alone has the stub).
func (e *relayEngine) deliver(c *conn, st *msgStub) {
	rm := st.relay
	rm.ref() // once queued, the stub may complete and drop its own
	defer rm.unref()
	rm.mu.Lock()
	rm.dst = c
	rm.mu.Unlock()
	if !c.queueDirect(st) {
		st.fail(ErrConnection, ErrConnectionGone)
		return
	}
	rm.mu.Lock()
	gone := rm.srcGone
	rm.mu.Unlock()
	if gone {
		c.relay.postCancel(rm)
	}
}

// cancelStubOnLoop cancels rm's stub on its destination, this connection
// (loop, from the mailbox): taken out of the direct queue, or canceled in
// the writer (CancelMessage downstream; a request waiting for its answer
// drops the answer when it comes). Nothing when it completed already.
func (rc *relayConn) cancelStubOnLoop(rm *relayMsg) {
	c, st := rc.c, rm.st
	if c.cancelDirect(st) {
		st.fail(ErrCanceled, ErrRelaySourceGone)
		return
	}
	if st.completed.Load() || c.closed {
		return
	}
	c.w.cancel(st.slot, st, ErrCanceled, ErrRelaySourceGone) // completed by the pump (runCompletions)
}
