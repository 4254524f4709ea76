package ipc

// Relay credits (docs/protocol.md §2, AckRequest/AckdCount; docs/relay.md,
// "Credits and memory"). A sender spends one credit on each packet that
// carries chunks of relay-bound messages and flags it AckRequest; the relay
// keeps that packet's relayed data in a relayBuf and returns the credit
// (AckdCount) once every destination has copied it. A receiver that keeps
// nothing returns the credit at once. So a relay holds at most a sender's
// credits worth of its packets, a slow destination slows its sources, and
// other messages keep their turns in the sender's writer.

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// relayBuf holds the relayed chunk data of one received packet until every
// chunk has been copied by its destination.
type relayBuf struct {
	b    []byte
	refs atomic.Int32 // the source's own reference while parsing, plus one per queued chunk
	// ack is the packet's AckRequest flag, written by the source's loop
	// before it drops its own reference.
	ack bool
	src *relayConn
}

// relayBufClasses are the capacities of pooled relay buffers; a packet's
// buffer has the smallest that holds its payload.
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

// packetBuf returns the relay buffer of the packet being parsed, taking
// one for it on its first relayed chunk. A source holding MaxBuffers
// already has flooded past its credits: ErrRelayFlood.
func (rc *relayConn) packetBuf() (*relayBuf, error) {
	if rc.cur != nil {
		return rc.cur, nil
	}
	if n := rc.held.Add(1); int(n) > rc.eng.cfg.MaxBuffers {
		rc.held.Add(-1)
		return nil, fmt.Errorf("%w: %d packets of relayed data held, limit %d", ErrRelayFlood, n-1, rc.eng.cfg.MaxBuffers)
	}
	k := relayBufClass(rc.c.r.pktLen)
	b, _ := relayBufPools[k].Get().(*relayBuf)
	if b == nil {
		b = &relayBuf{b: make([]byte, 0, relayBufClasses[k])}
	}
	b.src = rc
	b.refs.Store(1)
	rc.cur = b
	return b, nil
}

// release drops a reference; the last one returns the buffer, and the
// packet's credit to its source (any goroutine).
func (b *relayBuf) release() {
	if b.refs.Add(-1) != 0 {
		return
	}
	src := b.src
	src.held.Add(-1)
	if b.ack && src.acks.Add(1) == 1 {
		src.c.rc.Wake() // its loop returns the credits (pullOnLoop)
	}
	b.src, b.ack = nil, false
	b.b = b.b[:0]
	relayBufPools[relayBufClass(cap(b.b))].Put(b)
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
