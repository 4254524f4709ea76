// Package buffers provides pools of fixed-size byte buffers.
//
// ipcframe serializes and reads messages one fixed-size buffer at a time; a
// Pool hands those buffers out and takes them back without allocating in
// steady state. A Pool counts the buffers it has handed out and not yet taken
// back, so tests can assert that nothing leaks.
//
// [Prefault] makes the pages of a large array (a plain message's 64 MiB
// value) present ahead of the bytes that will be written into it, on a
// goroutine of its own, so that the event loop's reads do not take the
// page faults of memory new to the process.
package buffers

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Buffer sizes.
const (
	// DefaultSize is the buffer size used when none is configured: 4 KiB,
	// one memory page, as in SolidFrame.
	DefaultSize = 4 << 10
	// MinSize is the smallest accepted buffer size.
	MinSize = 64
	// MaxSize is the largest accepted buffer size: 64 KiB, the largest packet
	// the wire format can describe.
	MaxSize = 64 << 10
)

// Pool is a pool of buffers of one size. It is safe for concurrent use.
type Pool struct {
	size        int
	pool        sync.Pool
	outstanding atomic.Int64
}

// NewPool returns a pool of buffers of size bytes; zero means DefaultSize.
// It panics if size is outside [MinSize, MaxSize]; validate configuration
// with [CheckSize] first.
func NewPool(size int) *Pool {
	if size == 0 {
		size = DefaultSize
	}
	if err := CheckSize(size); err != nil {
		panic(err)
	}
	p := &Pool{size: size}
	p.pool.New = func() any {
		b := make([]byte, p.size)
		return &b
	}
	return p
}

// CheckSize reports whether size is a valid buffer size.
func CheckSize(size int) error {
	if size < MinSize || size > MaxSize {
		return fmt.Errorf("buffers: size %d outside [%d, %d]", size, MinSize, MaxSize)
	}
	return nil
}

// Size returns the size of the pool's buffers.
func (p *Pool) Size() int { return p.size }

// Get returns a buffer of len Size. Its contents are unspecified.
func (p *Pool) Get() *[]byte {
	p.outstanding.Add(1)
	b := p.pool.Get().(*[]byte)
	*b = (*b)[:p.size]
	return b
}

// Put returns b to the pool. b must have come from this pool's Get and must
// not be used afterwards.
func (p *Pool) Put(b *[]byte) {
	if b == nil {
		return
	}
	if cap(*b) != p.size {
		panic("buffers: Put of a foreign buffer")
	}
	p.outstanding.Add(-1)
	p.pool.Put(b)
}

// Outstanding returns the number of buffers handed out and not yet returned.
func (p *Pool) Outstanding() int64 { return p.outstanding.Load() }
