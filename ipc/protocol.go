package ipc

import (
	"fmt"
	"reflect"

	"github.com/ipcframe/ipcframe/serde"
)

// Message is a serializable message: a pointer to a struct whose Serde
// method lists its fields (see package serde).
type Message = serde.Type

// Protocol is the set of message types a service knows, each with a type id
// and an optional handler for messages of that type that arrive unsolicited
// (requests and one-way messages). Register every type before passing the
// Protocol to NewService; it must not change afterwards. One Protocol may be
// shared by several services.
type Protocol struct {
	byID   map[uint16]*typeInfo
	byType map[reflect.Type]*typeInfo
	max    uint16
}

type typeInfo struct {
	id      uint16
	alloc   func() Message
	handle  func(ctx Context, m Message) // nil: no handler
	recycle bool                         // the type embeds Recyclable
	pool    msgPool                      // recycled messages, when recycle
}

// new returns a message to decode into: a recycled one when the type embeds
// Recyclable (holding one reference for the receiver), else a fresh one.
func (ti *typeInfo) new() Message {
	if !ti.recycle {
		return ti.alloc()
	}
	m := ti.pool.get()
	if m == nil {
		m = ti.alloc()
	}
	rc := m.(recyclable).recycler()
	rc.home, rc.self = &ti.pool, m
	rc.refs.Store(1)
	return m
}

// NewProtocol returns an empty protocol.
func NewProtocol() *Protocol {
	return &Protocol{byID: map[uint16]*typeInfo{}, byType: map[reflect.Type]*typeInfo{}}
}

// Register adds message type T with wire type id id (1..255 with the default
// one-byte type ids) and handler, which runs on the connection's event loop
// for every message of this type that is not a response to one of our
// requests. handler may be nil for types that are only sent, or only
// received as responses. Handlers must not block: hand long work to another
// goroutine and respond from there.
func Register[T any, P interface {
	*T
	Message
}](p *Protocol, id uint16, handler func(ctx Context, m P)) error {
	if id == 0 {
		return fmt.Errorf("%w: type id 0 is reserved", ErrInvalidConfig)
	}
	rt := reflect.TypeFor[P]()
	if _, ok := p.byID[id]; ok {
		return fmt.Errorf("%w: type id %d registered twice", ErrInvalidConfig, id)
	}
	if _, ok := p.byType[rt]; ok {
		return fmt.Errorf("%w: type %v registered twice", ErrInvalidConfig, rt)
	}
	ti := &typeInfo{id: id, alloc: func() Message { return P(new(T)) }}
	if _, ti.recycle = any(P(new(T))).(recyclable); ti.recycle {
		ti.pool.free = make(chan Message, keptMessages)
	}
	if handler != nil {
		ti.handle = func(ctx Context, m Message) { handler(ctx, m.(P)) }
	}
	p.byID[id] = ti
	p.byType[rt] = ti
	if id > p.max {
		p.max = id
	}
	return nil
}

// MustRegister is Register that panics on error, for package-level setup.
func MustRegister[T any, P interface {
	*T
	Message
}](p *Protocol, id uint16, handler func(ctx Context, m P)) {
	if err := Register[T, P](p, id, handler); err != nil {
		panic(err)
	}
}

func (p *Protocol) maxID() int { return int(p.max) }

func (p *Protocol) lookup(m Message) *typeInfo {
	return p.byType[reflect.TypeOf(m)]
}

// GroupID returns the type id of message type typ of message group group:
// SolidFrame's (protocol, type) pair type ids (Protocol<std::pair<uint8_t,
// uint8_t>>), which let independent protocols share one service and one
// connection. Register each type with its GroupID; a service needs only
// the groups it uses. The ids need Config.TypeIDSize 2: the group byte is
// the low byte of the little-endian id, so the wire carries the group byte
// then the type byte, the pair's order (docs/protocol.md, "Body"). The
// default one-byte type ids are unchanged.
func GroupID(group, typ uint8) uint16 { return uint16(group) | uint16(typ)<<8 }

// SplitGroupID returns the group and type of a GroupID.
func SplitGroupID(id uint16) (group, typ uint8) { return uint8(id), uint8(id >> 8) }
