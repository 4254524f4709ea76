package ipc

import (
	"github.com/ipcframe/ipcframe/reactor"
	"github.com/ipcframe/ipcframe/serde"
)

// loopState is what the connections of one event loop share
// (reactor.Loop.Value): the buffers and codec state a connection needs only
// while it writes or while a message is under way. A loop runs one
// connection's handlers at a time, so one set serves them all, and an idle
// connection holds none of it: that is what keeps an idle connection at
// about 2 KiB of heap instead of about 100 KiB (docs/tuning.md, memory per
// connection). It is loop-owned.
type loopState struct {
	// batch is the buffer a connection fills with packets and hands to the
	// socket in one write (Config.WriteBatch bytes). Conn.Write copies or
	// writes the bytes before it returns, so the buffer is free again as
	// soon as the write returns. batchInUse guards the one case where a
	// pump runs inside another on the same loop (a failed write closes its
	// connection inside Write, and the close may move messages to another
	// connection of the loop): the inner pump gets a buffer of its own.
	batch      []byte
	batchInUse bool
	// longBatch is the batch of a connection whose sending pipe is the
	// long one (pipe.go): pipeLongBatch bytes or WriteBatch if larger,
	// allocated at first use;
	// longInUse guards it as batchInUse guards batch.
	longBatch []byte
	longInUse bool

	codecs codecPool

	// The idle check of codecs.segs (segcache.go): armed while the cache
	// holds segments, every segCacheIdle on the loop's clock.
	loop     *reactor.Loop
	segTimer *reactor.Timer // nil when not armed
	segTick  func()         // segIdleOnLoop, made once
}

// loopStateOf returns loop l's shared state, creating it at the loop's
// first connection (loop-only).
func loopStateOf(l *reactor.Loop, cfg *Config) *loopState {
	if ls, ok := l.Value().(*loopState); ok {
		return ls
	}
	ls := &loopState{batch: make([]byte, cfg.WriteBatch), loop: l}
	ls.codecs.init(cfg)
	ls.segTick = ls.segIdleOnLoop
	ls.codecs.segs.onHold = ls.armSegIdle
	l.SetValue(ls)
	return ls
}

// armSegIdle arms the segment cache's idle check unless it is armed
// (loop-only; the cache started holding segments).
func (ls *loopState) armSegIdle() {
	if ls.segTimer == nil {
		ls.segTimer = ls.loop.AfterFunc(segCacheIdle, ls.segTick)
	}
}

// segIdleOnLoop runs every segCacheIdle while the segment cache holds
// segments: it empties the cache if no large value used it in the period.
func (ls *loopState) segIdleOnLoop() {
	ls.segTimer = nil
	if ls.codecs.segs.releaseIfIdle() {
		ls.armSegIdle()
	}
}

// takeBatch returns the buffer to fill; putBatch gives it back once
// written.
func (ls *loopState) takeBatch() []byte {
	if ls.batchInUse {
		return make([]byte, len(ls.batch))
	}
	ls.batchInUse = true
	return ls.batch
}

func (ls *loopState) putBatch(buf []byte) {
	switch {
	case len(buf) == 0:
	case &buf[0] == &ls.batch[0]:
		ls.batchInUse = false
	case len(ls.longBatch) > 0 && &buf[0] == &ls.longBatch[0]:
		ls.longInUse = false
	}
}

// takeLongBatch is takeBatch for a connection whose sending pipe is the
// long one (pipe.go); putBatch gives it back.
func (ls *loopState) takeLongBatch() []byte {
	n := max(pipeLongBatch, len(ls.batch))
	if ls.longInUse {
		return make([]byte, n)
	}
	if ls.longBatch == nil {
		ls.longBatch = make([]byte, n)
	}
	ls.longInUse = true
	return ls.longBatch
}

// codecPool lends serde encoders to writer slots and receive states (each
// with its decoder) to reader slots, for as long as a message is being
// written or read; they come back when the message is done, so an idle
// connection holds none. A connection's writer and reader use their loop's
// pool; a writer or reader made alone (the tests) makes its own at first
// use. The pool keeps at most codecPoolMax of each kind: more in use at
// once on one loop allocate, and are dropped when they come back. Its
// decoders share its segment cache (segcache.go).
type codecPool struct {
	// immutable after init
	reg    *serde.Registry
	limits serde.Limits

	// owned by the loop (or the lone writer or reader)
	encs   []*serde.Encoder
	rslots []*rslot
	segs   segCache // the decoders' serde.SegmentPool
}

// codecPoolMax bounds each free list of a codecPool.
const codecPoolMax = 256

func (p *codecPool) init(cfg *Config) { p.initCodecs(cfg.Registry, cfg.Limits) }

func (p *codecPool) initCodecs(reg *serde.Registry, limits serde.Limits) {
	p.reg, p.limits = reg, limits
	p.segs.init(limits.WithDefaults().MaxString)
}

func (p *codecPool) encoder() *serde.Encoder {
	if n := len(p.encs); n > 0 {
		e := p.encs[n-1]
		p.encs[n-1] = nil
		p.encs = p.encs[:n-1]
		return e
	}
	return serde.NewEncoder(p.reg, p.limits)
}

func (p *codecPool) putEncoder(e *serde.Encoder) {
	if len(p.encs) < codecPoolMax {
		p.encs = append(p.encs, e)
	}
}

func (p *codecPool) rslot() *rslot {
	if n := len(p.rslots); n > 0 {
		s := p.rslots[n-1]
		p.rslots[n-1] = nil
		p.rslots = p.rslots[:n-1]
		return s
	}
	s := &rslot{dec: serde.NewDecoder(p.reg, p.limits)}
	s.dec.SetSegmentPool(&p.segs)
	return s
}

func (p *codecPool) putRslot(s *rslot) {
	s.phase, s.hdr, s.body = rIdle, msgHeader{}, msgBody{}
	if len(p.rslots) < codecPoolMax {
		p.rslots = append(p.rslots, s)
	}
}
