package serde

import (
	"fmt"
	"reflect"
)

// Registry maps type ids to factories for polymorphic fields ([Visitor.Any]).
// Register all types before the registry is shared; lookups (ID, New) are
// safe for concurrent use afterwards, but Register is not safe concurrently
// with anything else.
type Registry struct {
	byID   map[uint64]func() Type
	byType map[reflect.Type]uint64
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		byID:   make(map[uint64]func() Type),
		byType: make(map[reflect.Type]uint64),
	}
}

// Register maps id (non-zero) to the type produced by factory. It returns an
// error if id is 0 or taken, or the type is already registered. factory is
// called once by Register to learn the type; it must return a non-nil value
// of the same dynamic type every time.
func (r *Registry) Register(id uint64, factory func() Type) error {
	if id == 0 {
		return fmt.Errorf("serde: register: type id 0 is reserved for nil")
	}
	if factory == nil {
		return fmt.Errorf("serde: register id %d: nil factory", id)
	}
	if _, ok := r.byID[id]; ok {
		return fmt.Errorf("serde: register: type id %d is already registered", id)
	}
	t := factory()
	if t == nil {
		return fmt.Errorf("serde: register id %d: factory returned nil", id)
	}
	rt := reflect.TypeOf(t)
	if old, ok := r.byType[rt]; ok {
		return fmt.Errorf("serde: register id %d: type %v is already registered as id %d", id, rt, old)
	}
	r.byID[id] = factory
	r.byType[rt] = id
	return nil
}

// ID returns the id registered for t's dynamic type. It does not allocate.
func (r *Registry) ID(t Type) (uint64, bool) {
	if r == nil || t == nil {
		return 0, false
	}
	id, ok := r.byType[reflect.TypeOf(t)]
	return id, ok
}

// New returns a fresh value of the type registered as id.
func (r *Registry) New(id uint64) (Type, bool) {
	if r == nil {
		return nil, false
	}
	f, ok := r.byID[id]
	if !ok {
		return nil, false
	}
	t := f()
	return t, t != nil
}
