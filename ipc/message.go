package ipc

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// msgStub is one message on its way: queued in a pool or a connection, then
// owned by a connection's writer. It completes exactly once (complete's CAS).
type msgStub struct {
	// immutable after Send
	svc   *Service
	msg   Message
	ti    *typeInfo
	flags Flags // caller flags plus Response; never state bits
	state Flags // trip-state bits to send with
	// recipient request id, for responses: the request's sender id
	recipIndex, recipUnique uint32
	done                    func(err error) // one-way completion, may be nil
	onResp                  any             // the request callback, used by respFn
	respFn                  completer       // nil for one-way messages
	pool                    *pool           // nil for connection-directed messages

	completed atomic.Bool
	// keep marks a stub that never goes back to stubPool: a Call's (pooled
	// with its waiter) and a relay stub (pooled with its relayMsg).
	keep bool
	// ided marks a stub with a MessageID (SendContext, SendRequestContext):
	// it goes back to stubPool when its last holder releases it (refs), and
	// its generation then moves on, so that a MessageID of an earlier
	// message never reaches the stub's next one (cancel.go, "Generations").
	// Set before the stub is published, cleared by reset.
	ided bool
	// refs counts the holders of an ided stub: the engine until the
	// message completes on a path that recycles, the sender until it has
	// watched its context (one that can end), each Cancel while it runs
	// and each cancel handed to a loop until it ran. Zero for a stub that
	// is not ided.
	refs atomic.Int32
	// gen is the ided stub's generation, stepped when refs drops to zero;
	// a MessageID carries the gen it was issued with. Never reset.
	gen atomic.Uint64
	// The context watch of a message with a MessageID and a context that
	// can end (watchable, set before the stub is published): watch stores
	// stopWatch, then moves watched from watchNone to watchSet; complete
	// moves it from watchNone to watchDone, or, finding watchSet, calls
	// stopWatch. So the watch is stopped exactly once, by whichever comes
	// second, and stopWatch is read only after watchSet is seen (no
	// allocation to publish it).
	watchable bool
	watched   atomic.Int32
	stopWatch func() bool
	// call is the waiter of a Call's request (call.go), woken once
	// complete is over; nil otherwise. Immutable: set once per pooled stub.
	call *callWaiter

	// Where the message is, for Cancel: queued (in a pool queue, guarded by
	// the pool's mu, or in a connection's direct queue, guarded by its mu)
	// and which connection owns it once taken (set under the same lock).
	queued bool
	owner  *conn

	// cancelAsked is set by Cancel, under the lock that guards queued and
	// owner, when the message has left its queue, before Cancel hands the
	// cancel to the owning connection's loop: if the connection closes
	// first, the message fails as canceled instead of being resent (the
	// pool reads it under its lock in connClosed).
	cancelAsked atomic.Bool
	// cancelWhy is the kind and cause of the first cancel asked, stored
	// before cancelAsked: the close that overtakes the cancel fails the
	// message with them (failCanceled).
	cancelWhy atomic.Pointer[cancelReason]

	// seq orders a pool's messages; resent messages go back in this order.
	seq uint64
	// slot is the writer slot while a writer holds the message (loop-owned).
	slot int32
	// started is set by the writer of the connection that owns the message
	// when its first byte is written; read by that loop only.
	started bool

	// Relay (docs/relay.md). Immutable after Send.
	//
	// url is the relay path written in the message header ("" for a direct
	// message). credit marks a message that crosses a relay: every packet
	// carrying one of its chunks takes a relay credit (relay_credit.go).
	// relay is set on the stubs a relay node writes: the relayed message
	// whose chunks the writer copies instead of encoding a body.
	url    string
	credit bool
	relay  *relayMsg
}

// complete finishes the message once; later calls are ignored. It reports
// whether this call completed it.
func (st *msgStub) complete(resp Message, err error) bool {
	if !st.completed.CompareAndSwap(false, true) {
		return false
	}
	// Read now: once the call waiter is woken, its stub may be reused.
	rm := st.relay
	countCompletion(st.svc, err)
	if st.respFn != nil {
		st.respFn.complete(st, resp, err)
	} else if st.done != nil {
		st.done(err)
	}
	releaseMsg(st.msg)
	if st.watchable && !st.watched.CompareAndSwap(watchNone, watchDone) && st.watched.Load() == watchSet {
		st.stopWatch()
	}
	if st.svc != nil {
		st.svc.messageDone()
	}
	if st.call != nil {
		st.call.wake()
	}
	if rm != nil {
		// A relay stub is part of its pooled relayMsg: this drops the
		// stub's reference, after which st may be reused at once
		// (relay_msg.go, "Ownership"); the caller must not touch it.
		rm.unref()
	}
	return true
}

// discard undoes an accepted send that was then rejected: the message's
// reference is dropped, the service's in-flight count goes back down, and
// the stub is recycled. The send's callback is never called.
func (st *msgStub) discard() {
	releaseMsg(st.msg)
	if st.svc != nil {
		st.svc.messageDone()
	}
	st.recycle()
}

// stubPool recycles the stubs of messages completed on the hot paths.
var stubPool = sync.Pool{New: func() any { return new(msgStub) }}

// recycle returns st to stubPool. Only the code that completed st, and
// knows that nothing else in the engine refers to it, may call it. An
// ided stub drops the engine's reference instead: it goes back when its
// last holder lets go (release).
func (st *msgStub) recycle() {
	if st.keep {
		return
	}
	if st.ided {
		st.release()
		return
	}
	st.reset()
	stubPool.Put(st)
}

// acquire takes a reference on st for the holder of a MessageID of
// generation gen: false when that message's stub has gone back to the
// pool, or has been reused since (cancel.go, "Generations").
func (st *msgStub) acquire(gen uint64) bool {
	for {
		n := st.refs.Load()
		if n <= 0 {
			return false // not ided now: pooled, or a message without ID
		}
		if st.refs.CompareAndSwap(n, n+1) {
			break
		}
	}
	// Held: the generation cannot step until this reference is released.
	if st.gen.Load() != gen {
		st.release() // another message's stub: possibly its last holder
		return false
	}
	return true
}

// release drops a reference on an ided stub; the last one steps its
// generation and returns it to stubPool.
func (st *msgStub) release() {
	if st.refs.Add(-1) != 0 {
		return
	}
	st.gen.Add(1)
	st.reset()
	stubPool.Put(st)
}

// reset clears st for reuse, except keep, call, refs and gen.
func (st *msgStub) reset() {
	st.svc, st.msg, st.ti = nil, nil, nil
	st.flags, st.state = 0, 0
	st.recipIndex, st.recipUnique = 0, 0
	st.done, st.onResp, st.respFn, st.pool = nil, nil, nil, nil
	st.started, st.seq, st.slot = false, 0, 0
	st.queued, st.owner = false, nil
	st.url, st.credit, st.relay = "", false, nil
	st.ided, st.watchable = false, false
	st.stopWatch = nil
	// st is the caller's alone: an atomic load is a plain read, a store a
	// locked exchange (amd64), so the fields that are mostly zero already
	// are stored only when they are not.
	if st.watched.Load() != watchNone {
		st.watched.Store(watchNone)
	}
	if st.cancelAsked.Load() {
		st.cancelAsked.Store(false)
	}
	if st.cancelWhy.Load() != nil {
		st.cancelWhy.Store(nil)
	}
	st.completed.Store(false)
}

// The states of msgStub.watched.
const (
	watchNone int32 = iota // no watch yet, not completed
	watchSet               // watched; complete calls stopWatch
	watchDone              // completed first; watch calls stop itself
)

// fail completes st with a *MessageError of kind.
func (st *msgStub) fail(kind error, cause error) bool {
	return st.complete(nil, &MessageError{Kind: kind, Started: st.started, Cause: cause})
}

// cancelReason is what a cancel asked a message to complete with.
type cancelReason struct{ kind, cause error }

// failCanceled completes st as its cancel asked (cancelAsked is set), for
// a close that came before the cancel reached the connection's loop.
func (st *msgStub) failCanceled() bool {
	if why := st.cancelWhy.Load(); why != nil {
		return st.fail(why.kind, why.cause)
	}
	return st.fail(ErrCanceled, nil)
}

func (st *msgStub) isRequest() bool { return st.flags&AwaitResponse != 0 }

// resendable reports whether st may be queued again after its connection
// failed: never for one-shot or connection-directed messages; otherwise when
// sending had not started, or the message is idempotent.
func (st *msgStub) resendable() bool {
	if st.flags&OneShot != 0 || st.pool == nil {
		return false
	}
	return !st.started || st.flags&Idempotent != 0
}

// completer calls a request's callback. Implementations are zero-size, so
// storing one in a stub costs no allocation.
type completer interface {
	complete(st *msgStub, resp Message, err error)
}

// typedCompleter adapts a typed request callback.
type typedCompleter[Req, Resp any, PReq interface {
	*Req
	Message
}, PResp interface {
	*Resp
	Message
}] struct{}

func (typedCompleter[Req, Resp, PReq, PResp]) complete(st *msgStub, resp Message, err error) {
	cb := st.onResp.(func(PReq, PResp, error))
	var r PResp
	if resp != nil && err == nil {
		var ok bool
		if r, ok = resp.(PResp); !ok {
			err = fmt.Errorf("%w: response is %T, want %T", ErrUnexpectedResponse, resp, r)
		}
	}
	cb(st.msg.(PReq), r, err)
}

// untypedCompleter adapts an untyped request callback.
type untypedCompleter struct{}

func (untypedCompleter) complete(st *msgStub, resp Message, err error) {
	st.onResp.(func(Message, error))(resp, err)
}

// respondPart delivers one ResponsePart to a request that keeps waiting.
func (st *msgStub) respondPart(resp Message) {
	if st.respFn != nil && !st.completed.Load() {
		st.respFn.complete(st, resp, nil)
	}
}
