package ipc

// Relay credits and the relay's memory (docs/protocol.md §2,
// AckRequest/AckdCount; docs/relay.md, "Credits and memory").
//
// A sender spends one credit on each packet that carries chunks of
// relay-bound messages and flags it AckRequest. The relay copies each
// relayed chunk into its message's own buffers (relayBuf) and returns the
// packet's credit (AckdCount) at once while the source's relayed bytes it
// holds stay within RelayConfig.SourceBytes; beyond that it withholds the
// credits until its destinations have taken enough. So a relay holds at
// most about SourceBytes plus a source's credits worth of packets per
// source connection. Per message, a windowed message (docs/protocol.md §7b,
// both ends ipcframe) is bounded by its window, which the relay grants back
// only as its destination takes the bytes: a slow destination slows the
// messages going to it, and the source's other messages keep flowing.

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// relayBuf holds relayed chunk data of one message until its destination
// has copied every chunk in it.
type relayBuf struct {
	b    []byte
	refs atomic.Int32 // the message's own reference while it appends (relayMsg.tail), plus one per queued chunk
	src  *relayConn
}

// relayBufClasses are the capacities of pooled relay buffers: a message's
// first buffer has the smallest that holds its first chunk, each next one
// is a class larger, up to 64 KiB.
var relayBufClasses = [...]int{4 << 10, 16 << 10, maxPacketPayload}

var relayBufPools [len(relayBufClasses)]sync.Pool

func relayBufClass(n int) int {
	for i, c := range relayBufClasses {
		if n <= c {
			return i
		}
	}
	return len(relayBufClasses) - 1
}

// appendChunk copies a chunk's data into rm's buffers (source's loop) and
// returns the chunk, which holds a reference to its buffer. A source
// holding more than SourceBytes plus MaxBuffers packets of 64 KiB has
// ignored its credits: ErrRelayFlood.
func (rc *relayConn) appendChunk(rm *relayMsg, data []byte, end bool) (relayChunk, error) {
	ch := relayChunk{end: end}
	if len(data) == 0 {
		return ch, nil
	}
	limit := int64(rc.eng.cfg.SourceBytes) + int64(rc.eng.cfg.MaxBuffers)*maxPacketPayload
	if n := rc.heldBytes.Add(int64(len(data))); n > limit {
		rc.heldBytes.Add(-int64(len(data)))
		return ch, fmt.Errorf("%w: %d bytes of relayed data held, limit %d", ErrRelayFlood, n-int64(len(data)), limit)
	}
	b := rm.tail
	if b == nil || cap(b.b)-len(b.b) < len(data) {
		k := relayBufClass(len(data))
		if b != nil {
			k = max(k, min(relayBufClass(cap(b.b))+1, len(relayBufClasses)-1))
			b.release()
		}
		b = getRelayBuf(k, rc)
		rm.tail = b
	}
	off := len(b.b)
	b.b = append(b.b, data...)
	ch.buf, ch.data = b, b.b[off:len(b.b):len(b.b)]
	b.refs.Add(1)
	return ch, nil
}

func getRelayBuf(k int, src *relayConn) *relayBuf {
	b, _ := relayBufPools[k].Get().(*relayBuf)
	if b == nil {
		b = &relayBuf{b: make([]byte, 0, relayBufClasses[k])}
	}
	b.src = src
	b.refs.Store(1)
	return b
}

// dropTail drops rm's own reference to its last buffer (source's loop; the
// message ended or was abandoned).
func (rm *relayMsg) dropTail() {
	if rm.tail != nil {
		rm.tail.release()
		rm.tail = nil
	}
}

// release drops a reference; the last one returns the buffer, and if its
// source's credits were withheld and it now holds little enough, wakes the
// source's loop to return them (any goroutine).
func (b *relayBuf) release() {
	if b.refs.Add(-1) != 0 {
		return
	}
	src := b.src
	if src.heldBytes.Add(-int64(len(b.b))) <= int64(src.eng.cfg.SourceBytes) && src.deferred.Load() > 0 {
		src.c.rc.Wake() // its loop returns the credits (pullOnLoop)
	}
	b.src = nil
	b.b = b.b[:0]
	relayBufPools[relayBufClass(cap(b.b))].Put(b)
}

// packetEnd implements relayEvents (loop): the messages that started in
// the packet are routed, and an AckRequest packet's credit is owed to the
// peer at once (settleAcks says when it goes), unless the relay holds more
// than SourceBytes of this source's data: then it is withheld until its
// destinations have taken enough (takeDeferredOnLoop).
func (c *conn) packetEnd(ackRequest bool) {
	rc := c.relay
	if rc != nil {
		rc.flushRoutesOnLoop() // relay_conn.go
	}
	if !ackRequest {
		return
	}
	if rc == nil || rc.heldBytes.Load() <= int64(rc.eng.cfg.SourceBytes) {
		c.w.owedAcks++
		return
	}
	rc.deferred.Add(1)
	rc.takeDeferredOnLoop() // a release may have come in between
}

// settleAcks decides whether the credits owed to the peer go in the
// packets written now (loop; pump, before it fills packets). They go when
// a packet is written anyway (AckdCount is two bytes at its start), or
// when ackBatch or more are owed. Otherwise they wait: a relayed flow's
// credits then ride on its Window grants, and a plain receiver's on its
// answers and grants, instead of costing the peer a packet of their own
// per read.
//
// Waiting never stalls the peer: a peer has at least as many credits as it
// has unreturned at any moment, and owedAcks counts credits not returned
// yet, so ackBatch, the most ever owed here, is at most the peer's
// credits. A peer out of credits has all of them unreturned: once its
// packets have arrived, ackBatch or more are owed (or some are withheld
// by SourceBytes, whose return writes a packet and takes these along),
// and they go. ackBatch starts at 1 (every credit at once, as SolidFrame
// does) and grows to the peer's burst: reads that bring several
// AckRequest packets, and credits owed across reads.
func (w *writer) settleAcks() {
	if w.owedAcks == 0 {
		return
	}
	now := w.owedAcks >= w.ackBatch || w.hasOutput()
	w.ackBatch = max(w.ackBatch, w.owedAcks)
	if now {
		w.acks += w.owedAcks
		w.owedAcks = 0
	}
}

// takeDeferredOnLoop returns the withheld credits once the source's held
// bytes are within SourceBytes (loop).
func (rc *relayConn) takeDeferredOnLoop() {
	if rc.deferred.Load() > 0 && rc.heldBytes.Load() <= int64(rc.eng.cfg.SourceBytes) {
		rc.c.w.acks += int(rc.deferred.Swap(0))
	}
}

// takeCredit makes sure the packet being filled may carry the chunk of the
// front message (fill): a relay-bound message needs the packet to have
// taken a credit. Without credits left, a message that needs none is
// brought to the front instead, unless the front's header is half
// written (headers are never interleaved); false means the packet takes
// no more chunks.
func (w *writer) takeCredit(ackReq *bool) bool {
	if *ackReq || !w.slots[w.wq.front()].st.credit {
		return true
	}
	if w.credits > 0 {
		w.credits--
		*ackReq = true
		return true
	}
	for n := w.wq.len(); n > 1; n-- {
		if w.slots[w.wq.front()].phase == slotHeader {
			return false
		}
		w.wq.push(w.wq.pop())
		if !w.slots[w.wq.front()].st.credit {
			return true
		}
	}
	return false
}

// putAcks writes the AckdCount command that starts a packet when credits
// are to be returned, and returns its length.
func (w *writer) putAcks(p []byte) int {
	if w.acks == 0 || len(p) < 2 {
		return 0
	}
	n := min(w.acks, 255)
	p[0], p[1] = cmdAckdCount, byte(n)
	w.acks -= n
	return 2
}

// ackdCount implements relayEvents: the peer returned n credits.
func (c *conn) ackdCount(n uint8) error {
	c.w.credits += int(n)
	if c.w.credits > c.w.maxCredits {
		return fmt.Errorf("%w: %d credits held, %d lent", ErrRelayCredits, c.w.credits, c.w.maxCredits)
	}
	return nil
}
