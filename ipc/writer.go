package ipc

import (
	"fmt"

	"github.com/ipcframe/ipcframe/compress"
	"github.com/ipcframe/ipcframe/serde"
)

// The pipe below the writer (docs/benchmarks.md, head-of-line). Every byte
// handed to the reactor is a byte a message queued later waits behind, so
// the writer keeps little there: the reactor stops taking a connection's
// batches once writeHighWater bytes sit in its outbound buffer and resumes
// at writeLowWater as soon as the socket reports it drained; the kernel
// keeps at most about writeNotSentLowat bytes unsent (TCP_NOTSENT_LOWAT);
// and a loopback connection's receive buffer is fixed at
// loopbackRecvBuffer instead of autotuned to megabytes (the peer is on the
// same machine: there is no bandwidth-delay product to cover). Bulk data
// waits in the writer instead, where a newly queued message goes ahead of
// it.
const (
	writeHighWater     = 256 << 10
	writeLowWater      = 64 << 10
	writeNotSentLowat  = 128 << 10
	loopbackRecvBuffer = 256 << 10
)

// loopbackCongestion is the congestion control of a loopback connection
// unless its sending end is short (adaptPipe; reactor.Config.LoopbackCongestion):
// BBR, a common default, holds a loopback sender to some 16 segments in
// flight, and a receiver whose lengthened buffer advertises its whole room
// (growRecv) acknowledges once per read, not every second segment, so the
// sender stalled; Reno leaves the bytes in flight to the receive window and
// the message windows (docs/benchmarks.md, "64 MiB plain messages,
// receiving side, tenth session"). Beside small messages (the short pipe)
// the kernel's default comes back, as before: there the receiver's buffer
// stays short and its windows bound the bulk bytes in flight.
const loopbackCongestion = "reno"

// Writer slot phases.
const (
	slotFree         uint8 = iota
	slotQueued             // accepted, no byte written yet
	slotHeader             // header partly written
	slotBody               // header written, body under way
	slotWait               // fully written, waiting for the response
	slotSyncWait           // synchronous, waiting for the current synchronous message
	slotWaitCanceled       // canceled while waiting: absorbs the late response
	slotBlocked            // windowed body out of credit: out of the write queue (window.go)
	slotParked             // relayed body waiting for its next chunk (relay_writer.go)
)

// wslot is one writer slot. Its index + 1 and unique form the sender request
// id that a response carries back.
type wslot struct {
	st     *msgStub
	unique uint32
	phase  uint8
	cont   int // consecutive full body packets since the last turn
	bytes  int // chunk bytes written for the message so far (pipe.go)
	// large: the slot is counted in writer.largeBodies (pipe.go).
	large bool
	// windowed: the message obeys the peer's window and may send credit
	// more body bytes (window.go).
	windowed bool
	credit   int64
	// startPending: the message became windowed mid-body; no chunk of it
	// may go before its WindowStart command (window.go).
	startPending bool
	enc          *serde.Encoder
	hdr          msgHeader
	body         msgBody
	// asrc is the asynchronous source the message paused on, if any
	// (asyncsource.go): abandoned when the slot's encoder is released.
	asrc *AsyncSource
}

// writer is a connection's outgoing scheduler (docs/architecture.md). It is
// owned by the connection's event loop and never touches a socket: fill
// writes packets into the caller's buffer.
//
// A newly accepted message goes near the front of the write queue
// (insertNew). Algorithm of one fill: control commands first (CancelRequest,
// CancelMessage), then message chunks from the front of the write queue
// until fewer than minFreePacketData bytes remain. The front message keeps
// going while it has bytes and room; a finished message leaves the queue
// and the next one starts in the same packet, so small messages share
// packets. Not with a large message's body (one past smallMessage bytes,
// pipe.go) while small messages beside it finish one to a write (a caller
// at a time, besideMaxN): each of its chunks starts a packet and ends it, so small
// messages beside it travel in packets of their own and the peer's reader
// sees whole packets of one value, which it can read straight into the
// value (tryOpen, readinto.go); a value's chunk never follows a small
// message nor is followed by one in a packet. A message that filled ContinuousPackets packets in a row moves to
// the back of the queue when others wait (round-robin). A header is never
// interleaved: a message whose header is cut by the end of a packet stays at
// the front. Only one synchronous message is in the write queue at a time;
// the others wait in send order in syncWait.
type writer struct {
	// immutable
	maxMultiplex int
	maxWait      int
	contPackets  int
	// bufSize is Config.BufferSize; bigPacket, if not zero, the packet
	// size used instead once the peer's hello arrived (packetSize).
	bufSize    int
	bigPacket  int
	typeIDSize int
	codec      compress.Codec
	proto      *Protocol
	reg        *serde.Registry
	limits     serde.Limits

	// slots grows on demand up to maxSlots (MaxMultiplex+MaxResponseWait)
	// entries, so an idle connection holds none and a lightly used one
	// only the few it needed (docs/tuning.md, memory per connection).
	slots      []wslot
	maxSlots   int
	free       []int32 // stack of free slot indexes, among len(slots)
	wq         ring    // write queue: slots with bytes to write
	syncWait   ring    // synchronous slots waiting their turn
	curSync    int32   // synchronous slot in wq, or -1
	queued     int     // slots in wq and syncWait
	queuedReqs int     // requests among them
	waiting    int     // slots in slotWait
	finished   uint64  // messages fully serialized (counted by stats.go)
	// helloPending: the hello packet is still to be sent; peerWindows:
	// the peer's hello arrived, so new messages are windowed (window.go).
	helloPending bool
	helloSent    bool
	peerWindows  bool
	windows      []windowGrant // Window commands to send
	starts       []int32       // slots whose WindowStart command is to be sent
	// interleaved is set when a small message finished while a large one
	// was under way; the connection reads and clears it (pipe.go).
	interleaved bool
	// besideN counts the small messages finished beside a large one in the
	// write under way, besideMaxN the most in one write since the sending
	// pipe last turned short (noteWrite): above one, callers are in flight
	// together and a large value's chunks share packets (fillPacket).
	besideN, besideMaxN int
	// largeBodies counts the slots in the write queue whose body is under
	// way with more than smallMessage bytes written (setLarge, pipe.go).
	largeBodies int
	// canceledWaits counts slots in slotWaitCanceled: they hold a slot
	// until the late response arrives or the connection closes, count
	// against MaxResponseWait, and retire the connection when too many
	// (conn.retireAt).
	canceledWaits int

	cancelReqs []reqID     // CancelRequest commands to send
	cancelMsgs []uint32    // CancelMessage commands to send
	done       []*msgStub  // written one-way messages, to complete after the write
	failed     []failedMsg // messages that failed to encode, to complete
	scratch    []byte      // compression output, allocated at the first compressed packet

	comp compress.Adaptive // the codec under the connection's back-off

	// relay credits (relay_credit.go): credits left for packets that carry
	// relay-bound chunks, their configured maximum, and the AckdCount
	// credits to return to the peer: acks go in the next packet, owedAcks
	// wait for a packet written anyway or for ackBatch of them (the most
	// the peer has been seen to have unreturned at once; settleAcks).
	credits, maxCredits int
	acks, owedAcks      int
	ackBatch            int

	// codecs lends each slot an encoder while its message is being
	// written: the loop's pool (conn.go), or the writer's own.
	codecs *codecPool

	// mayBorrow is set during fillBorrow; borrowed then holds the user's
	// bytes that end the packet being filled (borrow.go).
	mayBorrow bool
	borrowed  []byte
	// lenders are the stream sources whose bytes this pump's write
	// carries (lend, asyncsource.go), released after it (releaseLent).
	lenders []serde.StreamLender

	// post runs a function on the loop and afterUnpark pumps the
	// connection: an asynchronous source resumes its message with them
	// (asyncsource.go). Set once in OnOpen; nil in socket-free tests.
	post        func(func()) error
	afterUnpark func()
}

type failedMsg struct {
	st    *msgStub
	kind  error // ErrEncode, ErrCanceled, ErrCanceledByPeer
	cause error
}

type reqID struct{ index, unique uint64 }

func newWriter(cfg *Config) *writer {
	n := cfg.MaxMultiplex + cfg.MaxResponseWait
	w := &writer{
		maxMultiplex: cfg.MaxMultiplex,
		maxWait:      cfg.MaxResponseWait,
		contPackets:  cfg.ContinuousPackets,
		bufSize:      cfg.BufferSize,
		typeIDSize:   cfg.TypeIDSize,
		codec:        cfg.Compression,
		proto:        cfg.Protocol,
		reg:          cfg.Registry,
		limits:       cfg.Limits,
		maxSlots:     n,
		curSync:      -1,
		helloPending: cfg.MessageWindow > 0,
		comp:         compress.NewAdaptive(cfg.Compression, cfg.CompressionBackoff),
		credits:      cfg.RelayCredits,
		maxCredits:   cfg.RelayCredits,
		ackBatch:     1,
	}
	if cfg.bufferAuto {
		w.bigPacket = min(cfg.WriteBatch, largePacketSize)
	}
	return w
}

// takeSlot pops a free slot, adding one when none is free and fewer than
// maxSlots exist; ok is false when all are in use. Free slots form a
// stack, so the most recently freed slot (and at light load slot 0) is
// reused first and the slot table grows only to the peak in use. Growing
// allocates (append doubles the table); steady state does not.
func (w *writer) takeSlot() (i int32, ok bool) {
	if n := len(w.free); n > 0 {
		i = w.free[n-1]
		w.free = w.free[:n-1]
		return i, true
	}
	if len(w.slots) == w.maxSlots {
		return 0, false
	}
	w.slots = append(w.slots, wslot{})
	return int32(len(w.slots) - 1), true
}

// pool returns the writer's codec pool, making its own if it has none.
func (w *writer) pool() *codecPool {
	if w.codecs == nil {
		w.codecs = &codecPool{reg: w.reg, limits: w.limits}
	}
	return w.codecs
}

// releaseEncoder gives slot i's encoder back to the pool: its message is
// written, freed or abandoned.
func (w *writer) releaseEncoder(i int32) {
	w.dropSource(i)
	if s := &w.slots[i]; s.enc != nil {
		s.enc.Reset(nil)
		w.pool().putEncoder(s.enc)
		s.enc = nil
	}
}

// canAccept reports whether enqueue would take a message of these flags.
func (w *writer) canAccept(f Flags) bool {
	if w.queued >= w.maxMultiplex || (len(w.free) == 0 && len(w.slots) == w.maxSlots) {
		return false
	}
	return f&AwaitResponse == 0 || w.waiting+w.canceledWaits+w.queuedReqs < w.maxWait
}

// enqueue gives st to the writer; it returns false when the writer is full.
func (w *writer) enqueue(st *msgStub) bool {
	if !w.canAccept(st.flags) {
		return false
	}
	i, _ := w.takeSlot()
	s := &w.slots[i]
	s.st, s.phase, s.cont, s.bytes = st, slotQueued, 0, 0
	st.slot = i
	w.queued++
	if st.isRequest() {
		w.queuedReqs++
	}
	if st.flags&Synchronous != 0 && w.curSync >= 0 {
		s.phase = slotSyncWait
		w.syncWait.push(i)
		return true
	}
	if st.flags&Synchronous != 0 {
		w.curSync = i
	}
	w.insertNew(i)
	return true
}

// insertNew puts the new slot i near the front of the write queue, as
// SolidFrame does: after a message whose header is partly written (headers
// are never interleaved) and after the other messages not started yet (so
// new messages keep their send order), but ahead of every message already
// under way. A small message queued beside large ones therefore starts in
// the next packet instead of waiting a continuity quota of each of them; a
// large new message writes its quota and then rotates to the back like the
// others.
func (w *writer) insertNew(i int32) {
	pos := 0
	n := w.wq.len()
	if n > 0 && w.slots[w.wq.at(0)].phase == slotHeader {
		pos = 1
	}
	for pos < n && w.slots[w.wq.at(pos)].phase == slotQueued {
		pos++
	}
	w.wq.insert(pos, i)
}

// busy reports whether the writer holds any message or pending command.
func (w *writer) busy() bool {
	return w.queued > 0 || w.waiting > 0 || w.hasControl()
}

// hasOutput reports whether fill would produce a packet.
func (w *writer) hasOutput() bool {
	return w.wq.len() > 0 || w.hasControl()
}

// newWaiting reports whether a message not started yet, or a command
// other than credit (cancels, the hello), waits to be written. New
// messages go near the front of the write queue (insertNew), after at most
// one message whose header is under way.
func (w *writer) newWaiting() bool {
	if len(w.cancelReqs) > 0 || len(w.cancelMsgs) > 0 || w.helloPending {
		return true
	}
	for k := 0; k < min(2, w.wq.len()); k++ {
		if w.slots[w.wq.at(k)].phase == slotQueued {
			return true
		}
	}
	return false
}

// hasControl reports whether commands other than chunks wait.
func (w *writer) hasControl() bool {
	return len(w.cancelReqs) > 0 || len(w.cancelMsgs) > 0 || len(w.windows) > 0 || len(w.starts) > 0 || w.helloPending || w.acks > 0
}

// fill writes at most one packet into pkt and returns its length, 0 when
// there is nothing to send. len(pkt) is the packet size limit.
func (w *writer) fill(pkt []byte) (int, error) {
	n, _, err := w.fillBorrow(pkt, false)
	return n, err
}

// fillBorrow is fill that, when borrow is set, may end the packet with a
// large value's own bytes instead of a copy (borrow.go): the packet is then
// pkt[:n] followed by ref, and len(pkt) limits n+len(ref).
func (w *writer) fillBorrow(pkt []byte, borrow bool) (n int, ref []byte, err error) {
	w.mayBorrow, w.borrowed = borrow, nil
	n, err = w.fillPacket(pkt)
	ref = w.borrowed
	w.mayBorrow, w.borrowed = false, nil
	if err != nil || n == 0 {
		return n, nil, err
	}
	return n, ref, nil
}

// fillPacket writes the packet of fill; a borrowed tail is in w.borrowed.
func (w *writer) fillPacket(pkt []byte) (int, error) {
	if w.helloPending && len(pkt) >= len(helloPacket) {
		w.helloPending, w.helloSent = false, true
		return copy(pkt, helloPacket), nil
	}
	p := pkt[packetHeaderSize:]
	if len(p) > maxPacketPayload-1 {
		p = p[:maxPacketPayload-1]
	}
	off := w.putAcks(p)
	for len(w.cancelReqs) > 0 && len(p)-off >= 1+2*serde.MaxCrossLen {
		r := w.cancelReqs[0]
		w.cancelReqs = w.cancelReqs[:copy(w.cancelReqs, w.cancelReqs[1:])]
		off += len(appendCancelRequest(p[off:off], r.index, r.unique))
	}
	for len(w.windows) > 0 && len(p)-off >= windowCmdMax {
		g := w.windows[0]
		w.windows = w.windows[:copy(w.windows, w.windows[1:])]
		off += len(appendWindow(p[off:off], g))
	}
	for len(w.starts) > 0 && len(p)-off >= 1+serde.MaxCrossLen {
		i := w.starts[0]
		w.starts = w.starts[:copy(w.starts, w.starts[1:])]
		if s := &w.slots[i]; s.startPending {
			s.startPending = false
			off += len(appendWindowStart(p[off:off], uint32(i)))
		}
	}
	for len(w.cancelMsgs) > 0 && len(p)-off >= 1+serde.MaxCrossLen {
		slot := w.cancelMsgs[0]
		w.cancelMsgs = w.cancelMsgs[:copy(w.cancelMsgs, w.cancelMsgs[1:])]
		off += len(appendCancelMessage(p[off:off], slot))
	}
	ackReq := false // the packet took a relay credit
	for len(p)-off >= minFreePacketData && w.wq.len() > 0 {
		i := w.wq.front()
		bulk := w.slots[i].large && w.besideMaxN <= 1
		if bulk && off > 0 {
			break // a large value's chunk starts a packet of its own
		}
		if !w.takeCredit(&ackReq) {
			break
		}
		at := off
		full, err := w.writeChunk(i, p, &off)
		if err != nil {
			return 0, err
		}
		if full || bulk && off > at {
			break // nothing follows a large value's chunk in its packet
		}
	}
	if off == 0 {
		if ackReq {
			w.credits++ // the message that took it parked: nothing to send
		}
		return 0, nil
	}
	var flags uint8
	if w.codec != nil && w.scratch == nil {
		w.scratch = make([]byte, 2*maxPacketPayload)
	}
	if ackReq {
		flags |= packetFlagAckRequest
	}
	if w.borrowed != nil {
		// Never with a codec (borrow.go): the payload goes uncompressed.
		putPacketHeader(pkt, packetHeader{typ: packetTypeData, flags: flags, size: off + len(w.borrowed)})
		return packetHeaderSize + off, nil
	}
	if n, ok := w.comp.Compress(w.scratch, p[:off]); ok {
		copy(p, w.scratch[:n])
		off = n
		flags |= packetFlagCompressed
	}
	putPacketHeader(pkt, packetHeader{typ: packetTypeData, flags: flags, size: off})
	return packetHeaderSize + off, nil
}

// writeChunk writes one chunk of slot i at p[*off:] and reports whether the
// packet is full.
func (w *writer) writeChunk(i int32, p []byte, off *int) (full bool, err error) {
	s := &w.slots[i]
	if s.phase == slotBody && s.st.relay != nil {
		return w.writeRelayBody(i, p, off)
	}
	c := p[*off:]
	code := uint8(cmdMessage)
	if s.phase == slotQueued {
		st := s.st
		st.started = true
		// A relay-bound message (to a relay, or a body a relay forwards)
		// obeys the relay credits and, if the peer grants windows, its
		// window too (docs/relay.md).
		s.windowed, s.credit, s.startPending = w.peerWindows, windowInitial, false
		s.hdr = msgHeader{
			flags:           (st.flags &^ localFlags) | StartedSend | st.state,
			url:             st.url,
			senderIndex:     uint32(i) + 1,
			senderUnique:    s.unique,
			recipientIndex:  st.recipIndex,
			recipientUnique: st.recipUnique,
		}
		if s.enc == nil {
			s.enc = w.pool().encoder()
		}
		if s.windowed {
			s.hdr.flags |= windowedFlag
		}
		s.enc.Reset(&s.hdr)
		s.phase = slotHeader
		code = cmdNewMessage
	}
	if s.startPending {
		return true, nil // its WindowStart did not fit this packet: next one
	}
	if s.phase == slotBody && s.windowed && s.credit == 0 {
		w.block(i) // window.go: until the peer grants more
		return false, nil
	}
	dataOff := putChunkStart(c, code, uint32(i))
	room := c[dataOff:]
	if s.phase == slotBody && s.windowed && int64(len(room)) > s.credit {
		room = room[:s.credit]
	}
	var n, copied int
	var done bool
	if b := w.borrow(s, room); b != nil {
		// The chunk's data is the value's own bytes, after the packet.
		n, w.borrowed = len(b), b
		_, done, err = s.enc.Encode(room[:0]) // done: only byte-less fields left
		if err != nil {
			finishChunk(c, code, n)
			*off += dataOff
			return true, w.encodeFailed(i, c, code, dataOff, 0, off, err)
		}
	} else if k, b := w.lend(s, room); b != nil {
		// A stream piece's bytes are its source's own (asyncsource.go),
		// after the packet; its 2-byte header is in it.
		n, copied, w.borrowed = k+len(b), k, b
	} else {
		n, done, err = s.enc.Encode(room)
		if err != nil {
			return false, w.encodeFailed(i, c, code, dataOff, n, off, err)
		}
		if !done && s.phase == slotBody && s.enc.Waiting() != nil {
			return false, w.waitSource(i, c, dataOff, n, off) // asyncsource.go
		}
		copied = n
	}
	ended := w.borrowed != nil // nothing may follow borrowed bytes in this packet
	s.bytes += n
	if s.phase == slotBody && s.bytes > smallMessage {
		w.setLarge(s, true)
	}
	if s.phase == slotHeader {
		finishChunk(c, code, n)
		*off += dataOff + n
		if !done {
			return true, nil
		}
		s.phase = slotBody
		w.setLarge(s, s.bytes > smallMessage)
		if s.st.relay != nil {
			return false, nil // the body is copied (writeRelayBody)
		}
		s.body = msgBody{msg: s.st.msg, id: s.st.ti.id, wide: w.typeIDSize == 2}
		s.enc.Reset(&s.body)
		return false, nil
	}
	if done {
		finishChunk(c, cmdEndMessage, n)
		*off += dataOff + copied
		w.finish(i)
		return ended, nil
	}
	finishChunk(c, cmdMessage, n)
	*off += dataOff + copied
	if s.windowed {
		if s.credit -= int64(n); s.credit == 0 {
			w.block(i)
			return ended, nil
		}
	}
	s.cont++
	if s.cont >= w.contPackets && w.wq.len() > 1 {
		s.cont = 0
		w.wq.push(w.wq.pop())
	}
	return true, nil
}

// encodeFailed handles a message that cannot be serialized (for example a
// field over the limits): the bytes already encoded are sent, the peer is
// told to drop the message (CancelMessage) and the message fails. The
// connection carries on.
func (w *writer) encodeFailed(i int32, c []byte, code uint8, dataOff, n int, off *int, err error) error {
	s := &w.slots[i]
	wrote := code != cmdNewMessage
	if n > 0 {
		finishChunk(c, code, n)
		*off += dataOff + n
		wrote = true
	}
	if wrote {
		w.cancelMsgs = append(w.cancelMsgs, uint32(i))
	}
	st := s.st
	w.unqueue(i)
	w.freeSlot(i)
	w.failed = append(w.failed, failedMsg{st, ErrEncode, err})
	return nil
}

// noteWrite ends a write (loop; conn.adaptPipe, pipe.go) on a sending pipe
// that is short (small messages beside a large one) or not: it keeps the
// most small messages one write finished beside a large one in the short
// spell (besideMaxN), anew with each spell. A large value's chunk travels
// in a packet of its own only while that is at most one, a caller at a
// time (fillPacket; docs/benchmarks.md, "Direct reads beside small calls,
// sixteenth session", "Gated to one caller").
func (w *writer) noteWrite(short bool) {
	if !short {
		w.besideMaxN = 0
	} else if w.besideN > w.besideMaxN {
		w.besideMaxN = w.besideN
	}
	w.besideN = 0
}

// finish handles slot i whose last byte was just written.
func (w *writer) finish(i int32) {
	s := &w.slots[i]
	st := s.st
	w.unqueue(i)
	w.releaseEncoder(i)
	w.finished++
	if s.bytes <= smallMessage && w.largeUnderWay() {
		w.interleaved = true
		w.besideN++
	}
	if st.isRequest() {
		s.phase = slotWait
		w.waiting++
		return
	}
	w.done = append(w.done, st)
	w.freeSlot(i)
}

// unqueue removes slot i, the front of the write queue, and promotes the
// next synchronous message when i was the current one.
func (w *writer) unqueue(i int32) {
	s := &w.slots[i]
	w.setLarge(s, false)
	if w.wq.len() > 0 && w.wq.front() == i {
		w.wq.pop()
	} else {
		w.wq.remove(i)
		w.syncWait.remove(i)
	}
	w.queued--
	if s.st.isRequest() {
		w.queuedReqs--
	}
	if w.curSync == i {
		w.curSync = -1
		if w.syncWait.len() > 0 {
			n := w.syncWait.pop()
			w.slots[n].phase = slotQueued
			w.curSync = n
			w.wq.push(n)
		}
	}
}

func (w *writer) freeSlot(i int32) {
	w.releaseEncoder(i)
	s := &w.slots[i]
	w.setLarge(s, false)
	s.st = nil
	s.phase = slotFree
	s.cont = 0
	s.startPending = false
	s.unique++
	s.body = msgBody{}
	w.free = append(w.free, i)
}

// takeResponse finds the request a response with recipient id (index,
// unique) answers. keep leaves the request waiting (ResponsePart). canceled
// reports a request canceled while waiting: its slot is freed (unless keep)
// and the response must be dropped.
func (w *writer) takeResponse(index, unique uint32, keep bool) (st *msgStub, canceled bool) {
	i := int64(index) - 1
	if i < 0 || i >= int64(len(w.slots)) {
		return nil, false
	}
	s := &w.slots[i]
	if s.unique != unique {
		return nil, false
	}
	switch s.phase {
	case slotWaitCanceled:
		if !keep {
			w.canceledWaits--
			w.freeSlot(int32(i))
		}
		return nil, true
	case slotWait:
		st = s.st
		if !keep {
			w.waiting--
			w.freeSlot(int32(i))
		}
		return st, false
	}
	return nil, false
}

// isCanceledWait reports whether recipient id (index, unique) names a
// request canceled while it waited.
func (w *writer) isCanceledWait(index, unique uint32) bool {
	i := int64(index) - 1
	return i >= 0 && i < int64(len(w.slots)) && w.slots[i].phase == slotWaitCanceled && w.slots[i].unique == unique
}

// cancel stops the message in slot i, if it is st (loop-only). A message
// not yet started leaves without a trace; one partly written is abandoned
// with a CancelMessage command, so the peer drops what it received; a
// request waiting for its response keeps its slot, canceled, until the
// response arrives (which is then dropped) or the connection closes. The
// message fails with kind. It reports whether st was found.
func (w *writer) cancel(i int32, st *msgStub, kind, cause error) bool {
	if i < 0 || int(i) >= len(w.slots) || w.slots[i].st != st {
		return false
	}
	s := &w.slots[i]
	switch s.phase {
	case slotQueued, slotSyncWait:
		w.unqueue(i)
		w.freeSlot(i)
	case slotHeader, slotBody, slotBlocked, slotParked:
		w.unqueue(i)
		w.freeSlot(i)
		w.cancelMsgs = append(w.cancelMsgs, uint32(i))
	case slotWait:
		w.waiting--
		w.canceledWaits++
		s.phase = slotWaitCanceled
		s.st = nil
	default:
		return false
	}
	w.failed = append(w.failed, failedMsg{st, kind, cause})
	return true
}

// cancelBySlot handles a peer's CancelRequest for our writer slot index-1:
// the message there, if it is still being written or waits, fails with
// ErrCanceledByPeer.
func (w *writer) cancelBySlot(index, unique uint64) {
	i := int64(index) - 1
	if i < 0 || i >= int64(len(w.slots)) {
		return
	}
	s := &w.slots[i]
	if s.unique != uint32(unique) || s.st == nil {
		return
	}
	w.cancel(int32(i), s.st, ErrCanceledByPeer, nil)
}

// drain empties the writer after its connection closed and returns every
// message it held, oldest slot order not guaranteed.
func (w *writer) drain() []*msgStub {
	var out []*msgStub
	for i := range w.slots {
		s := &w.slots[i]
		if s.phase == slotFree || s.st == nil {
			s.st, s.phase = nil, slotFree
			continue
		}
		out = append(out, s.st)
		w.releaseEncoder(int32(i))
		s.large = false
		s.st = nil
		s.phase = slotFree
		s.unique++
	}
	w.free = w.free[:0]
	for i := len(w.slots) - 1; i >= 0; i-- {
		w.free = append(w.free, int32(i))
	}
	w.wq.reset()
	w.syncWait.reset()
	w.curSync, w.queued, w.queuedReqs, w.waiting = -1, 0, 0, 0
	w.canceledWaits, w.largeBodies = 0, 0
	w.cancelReqs, w.cancelMsgs, w.windows, w.starts = w.cancelReqs[:0], w.cancelMsgs[:0], w.windows[:0], w.starts[:0]
	return out
}

// msgBody is what follows a message header: the type id, then the message's
// fields. When decoding, the message is created from the type id.
type msgBody struct {
	id    uint16
	id8   uint8
	wide  bool
	msg   Message
	proto *Protocol
	err   error
}

// Serde implements serde.Type.
func (b *msgBody) Serde(v *serde.Visitor) {
	if v.Decoding() {
		if b.wide {
			v.Fixed16(&b.id)
		} else {
			v.Fixed8(&b.id8)
		}
		v.Then(b)
		return
	}
	if b.wide {
		v.Fixed16(&b.id)
	} else {
		b.id8 = uint8(b.id)
		v.Fixed8(&b.id8)
	}
	v.Struct(b.msg)
}

// Continue creates the message once its type id is decoded.
func (b *msgBody) Continue(v *serde.Visitor) {
	if !b.wide {
		b.id = uint16(b.id8)
	}
	ti := b.proto.byID[b.id]
	if ti == nil {
		b.err = fmt.Errorf("%w: type id %d", ErrUnknownType, b.id)
		return
	}
	b.msg = ti.new()
	v.Struct(b.msg)
}

// ring is a FIFO of slot indexes. It grows on demand (it never holds more
// than the writer's slots) and never shrinks.
type ring struct {
	buf        []int32
	head, size int
}

func (r *ring) len() int { return r.size }
func (r *ring) front() int32 {
	return r.buf[r.head]
}
func (r *ring) push(v int32) {
	if r.size == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.size)%len(r.buf)] = v
	r.size++
}
func (r *ring) pop() int32 {
	v := r.buf[r.head]
	r.head = (r.head + 1) % len(r.buf)
	r.size--
	return v
}
func (r *ring) reset() { r.head, r.size = 0, 0 }

// grow doubles the ring's capacity (at least 4), keeping its order.
func (r *ring) grow() {
	buf := make([]int32, max(4, 2*len(r.buf)))
	for k := 0; k < r.size; k++ {
		buf[k] = r.buf[(r.head+k)%len(r.buf)]
	}
	r.buf, r.head = buf, 0
}

// at returns the k-th entry from the front.
func (r *ring) at(k int) int32 { return r.buf[(r.head+k)%len(r.buf)] }

// insert puts v at position k from the front (0: the new front), keeping
// the order of the others.
func (r *ring) insert(k int, v int32) {
	r.push(v)
	for j := r.size - 1; j > k; j-- {
		a, b := (r.head+j)%len(r.buf), (r.head+j-1)%len(r.buf)
		r.buf[a], r.buf[b] = r.buf[b], r.buf[a]
	}
}

// remove deletes v wherever it is, keeping the order of the others.
func (r *ring) remove(v int32) {
	n := r.size
	for k := 0; k < n; k++ {
		x := r.pop()
		if x != v {
			r.push(x)
		}
	}
}

// largeSender is what a reader's events may also be: a connection that
// tells whether its writer has a large message under way (reader.feed).
type largeSender interface{ sendingLarge() bool }

// sendingLarge reports whether the connection's writer has a message of
// more than smallMessage bytes under way (loop).
//
// After a feed that dispatched a message (a completion that may have
// woken its caller, or a handler) while this is true, the loop yields its
// P once, before its pump writes the next bulk batch: the callers the
// feed woke, queued on the loop's P, run first. Without
// the yield a caller woken by the completion waits in the P's run queue
// while the loop stays in its bulk write syscalls, 12–46 µs at c=1 beside
// 16 MiB messages on two vCPUs, and its next request misses the pump that
// follows (docs/benchmarks.md, "Head-of-line at concurrency 1 (sixth
// session)"). A reader with a large message arriving and much input left
// yields already (reader.feed). One yield per feed, not per dispatch: at
// high concurrency a loop that yields often waits behind the callers it
// woke (docs/architecture.md, "Yielding the P").
func (c *conn) sendingLarge() bool { return c.w.largeUnderWay() }
