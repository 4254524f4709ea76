package ipc

// A connection's side of the relay engine: what its reader routes (headers
// and chunks of relayed messages), and the mailbox other loops use to reach
// it (docs/relay.md, "Who owns what").

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// relayConn is the relay state of one connection of a relay node.
type relayConn struct {
	// immutable
	eng *relayEngine
	c   *conn

	// loop-owned
	in []*relayMsg // by reader slot: the relayed messages arriving here
	// routes are the messages whose header arrived in the packet being
	// parsed, routed at its end (flushRoutesOnLoop).
	routes []*relayMsg
	// granting are the windowed messages arriving here (each also in
	// in), whose window this loop returns as their destinations take
	// their bytes (relay_grant.go).
	granting []*relayMsg
	stall    relayStall // relay_stall.go

	// any goroutine
	heldBytes atomic.Int64 // relayed bytes from this source not yet released (relay_credit.go)
	deferred  atomic.Int32 // AckRequest credits withheld while heldBytes > SourceBytes
	posted    atomic.Int32 // mailbox entries waiting (fast check for pullOnLoop)

	mu sync.Mutex // guards the mailbox and sending; never held across a call out
	// mail is what other loops ask of this one (pullOnLoop); spare is the
	// drained list, reused.
	mail, spare []relayMail
	// sending holds the messages arriving through this connection that are
	// not finished on their destination, for closeOnLoop.
	sending map[*relayMsg]struct{}
	closed  bool

	// guarded by eng.mu
	names        []string // keys this connection registered
	unregistered bool     // closed: no more registrations
}

func newRelayConn(e *relayEngine, c *conn) *relayConn {
	return &relayConn{eng: e, c: c, in: make([]*relayMsg, e.svc.cfg.MaxReaderSlots), sending: map[*relayMsg]struct{}{}}
}

// relayHeader implements relayEvents (loop). A service that does not relay
// refuses a message with a relay path: its body is dropped and the sender
// is asked to stop it (CancelRequest), so it fails with ErrCanceledByPeer.
func (c *conn) relayHeader(slot uint32, h *msgHeader) (headerAction, error) {
	if c.relay != nil {
		return c.relay.headerOnLoop(slot, h)
	}
	if h.url == "" {
		return hdrDecode, nil
	}
	c.log.Debug("ipc: relayed message refused: relay disabled", "url", h.url)
	c.w.cancelReqs = append(c.w.cancelReqs, reqID{uint64(h.senderIndex), uint64(h.senderUnique)})
	return hdrSkip, nil
}

// headerOnLoop routes a header: an answer to a message this node relayed
// goes back where that message came from; a message with a relay path goes
// to the connection registered as its first name.
func (rc *relayConn) headerOnLoop(slot uint32, h *msgHeader) (headerAction, error) {
	c := rc.c
	if isBack(h.flags) && h.recipientIndex != 0 {
		if req := c.w.relayWaiting(h.recipientIndex, h.recipientUnique); req != nil {
			rc.answer(slot, h, req)
			return hdrRelay, nil
		}
	}
	if h.url == "" {
		return hdrDecode, nil
	}
	if err := checkRelayPath(h.url, rc.eng.cfg.MaxURL); err != nil {
		return hdrSkip, fmt.Errorf("%w: %w", ErrRelayURL, err)
	}
	name, rest := splitDestination(h.url)
	rm := newRelayMsg(c, slot, h.senderIndex, h.senderUnique, nameKey(name))
	rm.windowed.Store(c.r.windowed(slot))
	newRelayStub(c.svc, rm, h, rest, h.recipientIndex, h.recipientUnique)
	rc.start(slot, rm)
	rc.routes = append(rc.routes, rm)
	return hdrRelay, nil
}

// answer relays h, an answer to the relayed message req waiting on this
// connection's writer, back to where req came from, with req's original
// sender id as recipient. A ResponsePart keeps req waiting.
func (rc *relayConn) answer(slot uint32, h *msgHeader, req *msgStub) {
	c := rc.c
	keep := h.flags&ResponsePart != 0
	c.w.takeResponse(h.recipientIndex, h.recipientUnique, keep)
	back := req.relay
	rm := newRelayMsg(c, slot, h.senderIndex, h.senderUnique, "")
	rm.windowed.Store(c.r.windowed(slot))
	newRelayStub(c.svc, rm, h, "", back.origIndex, back.origUnique)
	rm.back = back.src
	rc.start(slot, rm)
	rc.routes = append(rc.routes, rm)
	if !keep {
		req.complete(nil, nil)
	}
}

// flushRoutesOnLoop routes the relayed messages whose headers arrived in
// the packet just parsed (loop; at the packet's end, or before a cancel or
// the close acts on them). Routing once per packet hands a destination a
// small message whole, header and body: one wake-up and one packet on its
// side instead of a header and then, after another wake-up, the body.
func (rc *relayConn) flushRoutesOnLoop() {
	for i, rm := range rc.routes {
		rc.routes[i] = nil
		if rm.back != nil {
			rc.eng.deliver(rm.back, rm.st)
		} else {
			rc.eng.route(rm.key, rm.st)
		}
		rm.unref() // the route's
	}
	rc.routes = rc.routes[:0]
}

// start records rm as arriving in reader slot slot.
func (rc *relayConn) start(slot uint32, rm *relayMsg) {
	rc.in[slot] = rm
	if rm.windowed.Load() {
		rc.granting = append(rc.granting, rm)
	}
	rc.mu.Lock()
	rc.sending[rm] = struct{}{}
	rc.mu.Unlock()
}

// letGo is reader slot slot letting go of rm, its message (loop; its end
// chunk, a CancelMessage, the close): its last buffer is dropped and its
// window no longer returned. The caller then drops the slot's reference.
func (rc *relayConn) letGo(slot uint32, rm *relayMsg) {
	rc.in[slot] = nil
	rm.dropTail()
	if i := slices.Index(rc.granting, rm); i >= 0 {
		rc.granting = slices.Delete(rc.granting, i, i+1)
	}
}

// forget drops rm from sending, finished (any goroutine).
func (rc *relayConn) forget(rm *relayMsg) {
	rc.mu.Lock()
	delete(rc.sending, rm)
	rc.mu.Unlock()
}

// relayChunk implements relayEvents (loop): the chunk's data is copied into
// its message's relay buffers and queued for the destination.
func (c *conn) relayChunk(slot uint32, data []byte, end bool) error {
	rc := c.relay
	rm := rc.in[slot]
	if rm == nil {
		return nil
	}
	ch, err := rc.appendChunk(rm, data, end)
	if err != nil {
		return err // the close abandons it (closeOnLoop)
	}
	if end {
		rc.letGo(slot, rm)
	}
	if !rm.push(ch) && ch.buf != nil {
		ch.buf.release() // the destination is done with the message
	}
	if end {
		rm.unref() // the reader slot's
	}
	return nil
}

// relayWindowStart implements relayEvents (loop): the source windows the
// relayed message in slot from now on.
func (c *conn) relayWindowStart(slot uint32) {
	if rm := c.relay.in[slot]; rm != nil && !rm.windowed.Load() {
		rm.windowed.Store(true)
		c.relay.granting = append(c.relay.granting, rm)
	}
}

// canceledOnLoop handles a CancelMessage for reader slot slot: a relayed
// message in it is abandoned.
func (rc *relayConn) canceledOnLoop(slot uint32) {
	rc.flushRoutesOnLoop()
	if rm := rc.in[slot]; rm != nil {
		rc.letGo(slot, rm)
		rm.abandon(rc.eng)
		rm.unref() // the reader slot's
	}
}

// relayMail is one request to a connection's loop about a relayed
// message rm, which it holds a reference to: unpark its stub (a chunk
// came), return its window (its destination took bytes of it), or cancel
// its stub (its source gave it up). With rm nil: send CancelRequest up to
// the peer.
type relayMail struct {
	rm   *relayMsg
	kind uint8 // mailUnpark, mailGrant, mailCancel; mailUp when rm is nil
	up   reqID
}

// relayMail kinds.
const (
	mailUp uint8 = iota
	mailUnpark
	mailGrant
	mailCancel
)

// postGrant tells the loop that the destination of rm, a windowed message
// arriving here, took bytes of it (any goroutine holding a reference).
func (rc *relayConn) postGrant(rm *relayMsg) { rc.postMsg(rm, mailGrant) }

// postUnpark tells the loop, rm's destination, that rm got a chunk (any
// goroutine holding a reference).
func (rc *relayConn) postUnpark(rm *relayMsg) { rc.postMsg(rm, mailUnpark) }

// postCancel has the loop, rm's destination, cancel rm's stub (any
// goroutine holding a reference).
func (rc *relayConn) postCancel(rm *relayMsg) { rc.postMsg(rm, mailCancel) }

// postCancelUp has the loop send CancelRequest id to the peer (any
// goroutine).
func (rc *relayConn) postCancelUp(id reqID) { rc.post(relayMail{up: id}) }

// postMsg posts a mail about rm, with a reference for the mailbox.
func (rc *relayConn) postMsg(rm *relayMsg, kind uint8) {
	rm.ref()
	rc.post(relayMail{rm: rm, kind: kind})
}

func (rc *relayConn) post(m relayMail) {
	rc.mu.Lock()
	if rc.closed {
		rc.mu.Unlock()
		if m.rm != nil {
			m.rm.unref()
		}
		return
	}
	rc.mail = append(rc.mail, m)
	rc.mu.Unlock()
	rc.posted.Add(1)
	rc.c.rc.Wake()
}

// pullOnLoop takes the returned credits and the mailbox (loop, from
// conn.pull).
func (rc *relayConn) pullOnLoop() {
	w := rc.c.w
	rc.takeDeferredOnLoop()
	rc.collectGrantsOnLoop() // relay_grant.go
	if rc.posted.Load() == 0 {
		return
	}
	rc.mu.Lock()
	rc.posted.Store(0)
	mail := rc.mail
	rc.mail, rc.spare = rc.spare[:0], nil
	rc.mu.Unlock()
	for i, m := range mail {
		switch m.kind {
		case mailUnpark:
			w.unpark(m.rm.st)
		case mailGrant:
			rc.grantOnLoop(m.rm)
		case mailCancel:
			rc.cancelStubOnLoop(m.rm) // relay_msg.go
		default:
			w.cancelReqs = append(w.cancelReqs, m.up)
		}
		if m.rm != nil {
			m.rm.unref() // the mailbox's
		}
		mail[i] = relayMail{}
	}
	rc.mu.Lock()
	rc.spare = mail[:0]
	rc.mu.Unlock()
}

// closeOnLoop runs when the connection closes (loop): its names go, and
// the relayed messages arriving through it that are incomplete, or that
// await an answer it can no longer take, are abandoned. Complete one-way
// messages still reach their destination.
func (rc *relayConn) closeOnLoop() {
	rc.flushRoutesOnLoop()
	rc.stopStall()
	rc.eng.unregister(rc.c)
	rc.mu.Lock()
	rc.closed = true
	var abandon []*relayMsg
	for rm := range rc.sending {
		rm.ref() // in sending: its stub's reference is held
		abandon = append(abandon, rm)
	}
	mail := rc.mail
	rc.mail = nil
	rc.mu.Unlock()
	for _, m := range mail {
		if m.rm != nil {
			m.rm.unref() // the mailbox's: the mail is dropped
		}
	}
	incomplete := make(map[*relayMsg]bool)
	var slots []*relayMsg
	for i, rm := range rc.in {
		if rm != nil {
			rc.letGo(uint32(i), rm)
			incomplete[rm] = true
			slots = append(slots, rm)
		}
	}
	for _, rm := range abandon {
		if incomplete[rm] || rm.st.isRequest() {
			rm.abandon(rc.eng)
		}
		rm.unref() // closeOnLoop's
	}
	for _, rm := range slots {
		rm.unref() // the reader slot's
	}
}
