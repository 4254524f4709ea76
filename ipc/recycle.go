package ipc

import (
	"sync"
	"sync/atomic"
)

// Recyclable, embedded in a message struct, lets the engine reuse messages
// of that type instead of allocating one per receive.
//
// The engine holds a reference to a recyclable message while it owns it:
// from the moment it is passed to a send until that send completes, and
// while a received one is handed to a handler or request callback. When the
// last reference is dropped the message goes back to its type's pool, and a
// later receive decodes into it, reusing its slices' capacity. A message
// taken from the pool keeps its previous contents until its fields are
// decoded again. A []byte field is decoded into the array it already has
// when that is long enough (no allocation and no fresh memory for a large
// value); a longer value gets a new array, which the message then keeps. A
// service's sent messages of a type go back to the same pool as its
// received ones, so a receive may get a message whose array came from a
// send.
//
// Rules for code that uses a recyclable type: do not keep a received
// message, or a sent one after its completion, unless you call Retain, and
// then Release it when done; do not change a message after passing it to a
// send. Types that do not embed Recyclable are never reused: the garbage
// collector reclaims them as usual.
type Recyclable struct {
	refs atomic.Int32
	home *msgPool
	self Message // the message that embeds this, set with home
}

// msgPool holds a type's released messages: a few in a free list that the
// garbage collector leaves alone, so that a steady flow of large messages
// keeps reusing the same ones, and the rest in a sync.Pool.
type msgPool struct {
	free chan Message
	pool sync.Pool
}

// keptMessages is how many released messages per type survive garbage
// collections.
const keptMessages = 2

func (p *msgPool) get() Message {
	select {
	case m := <-p.free:
		return m
	default:
	}
	m, _ := p.pool.Get().(Message)
	return m
}

func (p *msgPool) put(m Message) {
	select {
	case p.free <- m:
	default:
		p.pool.Put(m)
	}
}

// recyclable is implemented by every struct that embeds Recyclable.
type recyclable interface {
	recycler() *Recyclable
}

func (r *Recyclable) recycler() *Recyclable { return r }

// Retain takes a reference that keeps the message from being reused until
// the matching Release.
func (r *Recyclable) Retain() { r.refs.Add(1) }

// Release drops a reference taken with Retain. The message must not be used
// after its last reference is released.
func (r *Recyclable) Release() {
	if r.refs.Add(-1) == 0 && r.home != nil {
		r.home.put(r.self)
	}
}

// retainMsg takes the engine's reference on m, if m is recyclable.
func retainMsg(m Message, ti *typeInfo) {
	if r, ok := m.(recyclable); ok {
		rc := r.recycler()
		if rc.home == nil {
			rc.home, rc.self = &ti.pool, m
		}
		rc.refs.Add(1)
	}
}

// releaseMsg drops the engine's reference on m, if m is recyclable.
func releaseMsg(m Message) {
	if r, ok := m.(recyclable); ok {
		rc := r.recycler()
		if rc.refs.Add(-1) == 0 && rc.home != nil {
			rc.home.put(m)
		}
	}
}
