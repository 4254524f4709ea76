package ipc

import (
	"encoding/binary"
	"fmt"

	"github.com/ipcframe/ipcframe/reactor"
	"github.com/ipcframe/ipcframe/serde"
)

// Reading large values straight from the socket (plain TCP).
//
// A []byte or string value whose whole array exists before its bytes
// arrive (the connection's receive budget lent it, recvbudget.go, or a
// recycled message's array holds it) need not pass through the loop's read
// buffer: the reader opens the packet that carries its next bytes as soon
// as the packet's headers are in, when that packet holds nothing but one
// chunk of the value (tryOpen), and the connection asks the reactor to
// read the rest of the chunk from the socket straight into the value's
// array (reactor.Conn.ReadIntoBufs).
//
// One read takes up to four packets (readPlan): the open packet's rest,
// then packets predicted to be as long as the last one parsed, each
// header into a small buffer of its own and each chunk's data straight
// into the value's space, right after the previous one's. A 64 KiB packet
// thus costs a quarter of a readv(2) and no copy of its data. While no
// packet is open (a feed that ended exactly at a packet's end: on loopback
// the sender's writes land whole, so a receiver that keeps up meets that
// after nearly every EAGAIN, and two thirds of a 64 MiB value used to come
// through gnet's buffer, docs/benchmarks.md "64 MiB one way, receiving
// side, ninth session"), the plan starts with a predicted packet, as long
// as the connection's only message under way is a large value with room
// and no cut packet waits (conn.rest).
//
// Two values under way (a sender interleaves large messages' packets,
// ContinuousPackets in a row each): the plan predicts only the packets
// the sender's turn still owes the open packet's value (packetRun), then
// reads the next packet's headers into a buffer of their own (tail); they
// open that packet, of either value, and the next read takes its data
// straight into its array (planRead).
//
// Beside small messages (the connection is interleaved, pipe.go) direct
// reads are for one caller at a time only (oneCaller): beside several the
// value's bytes are gnet's. Beside one, a plan
// stands only while a packet of a value is open: its rest, and the packets
// predicted after it, in one read. With no packet open gnet's next read is
// made short instead (reactor.Conn.ShortenNextRead): the readiness that
// brings the value's next packet is gnet's, and a plan read ahead there
// would meet EAGAIN at nearly every readiness (docs/benchmarks.md, "Direct
// reads beside small messages, thirteenth session"); the short read brings
// the packet's headers (and any small message before it) through OnData,
// the packet opens, and its data is read straight into the value at once.
// The writer helps: a large value's chunk travels in a packet of its own
// (writer.go) beside one caller at a time, so every value packet can open.
//
// Only large messages get a plan of their own (valuesUnderWay): every
// message under way must have had more than smallMessage (16 KiB) bytes
// arrive and be in a value's body with room. While any small message is
// under way, or none is large, a plan is at most the open packet's rest
// and the packets predicted after it: no tail, no plan while no packet is
// open, no read of a cut packet's rest alone.
//
// After the read, each predicted header must open a packet of that value
// (tryOpen, all its checks); its data is taken as far as it landed where
// predicted. From the first byte that is not so (headers that open nothing
// or another slot's packet, a packet shorter or longer than predicted, the
// read ending inside headers), every byte read after it is copied out of
// the buffers, in order, and fed through the ordinary path (conn.feed), as
// if gnet had read it; the value's space beyond its length, where such
// bytes may have landed, is read by nobody else. At most one such copy
// happens per read, of at most what the read took.
//
// Bytes of an open packet that arrive through the loop's buffer instead
// (the direct read stopped at EAGAIN and the next readiness went to gnet)
// are decoded as usual, with a copy. The declared size is trusted no
// further than before: the reader only reads into space the decoder
// already holds (serde.Decoder.ValueSpace), and every byte is charged to
// the message's window and counted as the chunk's as it lands.

// openChunk is the packet the reader has opened: its only command is a
// chunk of the value being decoded in slot, and rest of its data bytes
// have yet to arrive (reader-owned).
type openChunk struct {
	on   bool
	end  bool // the chunk is the message's last (EndMessage)
	ack  bool // the packet's AckRequest flag (relay credits)
	slot uint32
	rest int // chunk data bytes still to come
	size int // the chunk's data bytes
	hdr  int // the packet's header bytes: packet header and chunk header
}

// directTailSize is the room of each header buffer of a read plan: a packet header
// and the longest chunk header.
const directTailSize = packetHeaderSize + chunkHeaderMax

// tryOpen opens the cut packet at the front of b (shorter than the whole
// packet) when reading into values is on and the packet is one chunk of a
// value with room for all of its data (see above): it consumes all of b,
// decoding the data bytes b holds, and reports true. Otherwise it consumes
// nothing and reports false; a malformed header is left for the ordinary
// path to reject.
func (r *reader) tryOpen(b []byte) (bool, error) {
	if !r.direct || r.open.on || len(b) < packetHeaderSize+3 {
		return false, nil
	}
	h, err := parsePacketHeader(b, r.maxPayload)
	if err != nil || h.typ != packetTypeData || h.flags&packetFlagCompressed != 0 {
		return false, nil
	}
	p := b[packetHeaderSize:]
	if len(p) >= h.size || (p[0] != cmdMessage && p[0] != cmdEndMessage) {
		return false, nil
	}
	slot, m, err := serde.ParseCross(p[1:])
	if err != nil || m == 0 || slot >= uint64(r.maxSlots) || len(p) < 1+m+2 {
		return false, nil
	}
	hl := 1 + m + 2
	l := int(binary.LittleEndian.Uint16(p[1+m:]))
	if hl+l != h.size {
		return false, nil
	}
	s := r.slot(uint32(slot))
	if s == nil || s.phase != rBody || s.async != nil || len(s.dec.ValueSpace()) < l {
		return false, nil
	}
	r.pktLen = h.size
	r.noteRun(uint32(slot))
	r.open = openChunk{
		on:   true,
		end:  p[0] == cmdEndMessage,
		ack:  h.flags&packetFlagAckRequest != 0,
		slot: uint32(slot),
		rest: l,
		size: l,
		hdr:  packetHeaderSize + hl,
	}
	r.shortOpened = true
	if data := p[hl:]; len(data) > 0 {
		return true, r.openPiece(data, 0)
	}
	return true, nil
}

// packetRun is what the reader has seen of the sender's turns between
// messages (reader-owned): the slot of the last value chunk, how many
// chunks of that slot came in a row (n), and how long the last finished
// run of one slot was (last). An ipcframe writer gives a large message
// ContinuousPackets packets in a row before the next one's turn, so with
// two values under way the next packet is the same value's while n is
// below last, and the other's after that.
type packetRun struct {
	slot    uint32
	n, last int
}

// noteRun counts a chunk of slot (reader-owned).
func (r *reader) noteRun(slot uint32) {
	if slot == r.run.slot {
		r.run.n++
		return
	}
	if r.run.n > 0 {
		r.run.last = r.run.n
	}
	r.run.slot, r.run.n = slot, 1
}

// openFeed decodes the front of data that belongs to the open packet and
// returns how many bytes that was.
func (r *reader) openFeed(data []byte) (int, error) {
	k := min(r.open.rest, len(data))
	if k == 0 {
		return 0, nil
	}
	return k, r.openPiece(data[:k], 0)
}

// openFilled takes n bytes read into openSpace (n at most its length).
func (r *reader) openFilled(n int) error {
	if n <= 0 {
		return nil
	}
	if n > r.open.rest || !r.open.on {
		return fmt.Errorf("%w: %d bytes read into an open packet with %d left", ErrBadChunk, n, r.open.rest)
	}
	return r.openPiece(nil, n)
}

// openPiece handles the next bytes of the open packet's chunk: data, or
// filled bytes already in the value's space. The last piece ends the
// packet.
func (r *reader) openPiece(data []byte, filled int) error {
	o := &r.open
	n := len(data) + filled
	o.rest -= n
	s := r.slot(o.slot)
	if s == nil || s.phase != rBody {
		return fmt.Errorf("%w: open packet's slot %d is not receiving a body", ErrBadChunk, o.slot)
	}
	r.countChunk(s, n)
	last := o.rest == 0
	if err := r.body(s, o.slot, data, filled, last && o.end); err != nil {
		return err
	}
	if last {
		o.on = false
		r.dispatched = false
		if r.rev != nil {
			r.rev.packetEnd(o.ack)
		}
	}
	return nil
}

// armReadInto asks the reactor to read straight into the value being
// received, as planned by planRead (loop, after a feed).
func (c *conn) armReadInto() {
	c.r.plan.on = false
	if c.closed || c.raw {
		return
	}
	if c.sendPipe.on || c.recvPipe.on {
		// Beside small messages (the reactor's connection is
		// interleaved, pipe.go) direct reads are for one caller at a
		// time only (oneCaller); beside several, the bulk's bytes are
		// gnet's, as without direct reads. With one, no plan stands
		// without an open packet: gnet's next read is short instead,
		// so that the next packet's headers arrive through OnData and,
		// when they open it, its data is read straight into the value
		// in the same readiness event (see above).
		if !c.r.oneCaller() {
			return
		}
		if !c.r.open.on {
			if c.r.direct && c.r.largeWithRoom() {
				c.shortRead()
			}
			return
		}
	}
	bufs := c.r.planRead(c.rest)
	if len(bufs) == 0 {
		return
	}
	if testHookArmAhead != nil && c.r.plan.first == 0 && c.r.plan.pkts > 0 {
		testHookArmAhead(c.r.plan.hdr, c.r.plan.lens[0])
	}
	c.r.plan.on = c.rc.ReadIntoBufs(bufs)
}

// Sizes of the short read beside small messages (shortRead).
const (
	shortReadMin = reactor.ShortReadBytes // a 1 KiB message and the next packet's headers
	shortReadMax = 64 << 10               // sixteen 1 KiB messages in front of a value packet, and more
)

// oneCaller reports whether small messages beside a large one come one to
// a feed (a share of one window, besideShareN; the gate of grantAhead,
// window.go), and have all along since the receiving pipe turned short
// (besideSeveral: a share of one window now and then beside sixteen
// callers would let short reads in): a caller at a time. Only then are a value's bytes read
// directly beside them (armReadInto): beside callers in flight together
// the reads before a value packet end among small messages, a short read
// is one more loop turn per packet, and the direct reads cost the calls
// and the bulk flow (sixteen callers: calls 0.85x, HeadOfLineBulk echo
// bulk 0.68x; docs/benchmarks.md, "Direct reads beside small calls,
// sixteenth session").
func (r *reader) oneCaller() bool { return !r.besideSeveral && r.besideShareN() == 1 }

// shortRead asks that gnet's next read be short (loop; beside small
// messages with one caller at a time (oneCaller), no packet open, a large
// value with room): long enough for the
// small messages in front of the value's next packet and its headers,
// learnt from the reads so far (noteShortRead), and, when a cut packet
// that did not open waits in c.rest, for its rest too. A cut packet too
// long for that (a value's last chunk, which never opens) is left to
// gnet's whole read.
func (c *conn) shortRead() {
	r := c.r
	if r.short == 0 {
		r.short = shortReadMin
	}
	n := r.short
	if len(c.rest) >= directTailSize { // headers in: it did not open
		h, err := parsePacketHeader(c.rest, maxPacketPayload)
		if err != nil {
			return
		}
		left := packetHeaderSize + h.size - len(c.rest)
		if left > shortReadMax {
			return
		}
		n += left
	}
	if c.rc.ShortenNextRead(n) {
		r.shortAsked, r.shortOpened = n, false
	}
}

// noteShortRead adapts the short read's size after a read of n bytes that
// was asked short (loop; onData, before the feed's armReadInto): a read
// that opened a value's packet copied the data of it that it took, so the
// next one is shorter by half of that; one that took all it was allowed
// and opened none ended among small messages (or their cut packet), so
// the next one is twice as long, up to shortReadMax.
func (c *conn) noteShortRead(n int) {
	r := c.r
	asked := r.shortAsked
	if asked == 0 {
		return
	}
	r.shortAsked = 0
	switch {
	case r.shortOpened && r.open.on:
		r.short = max(shortReadMin, r.short-(r.open.size-r.open.rest)/2)
	case !r.shortOpened && n >= asked:
		r.short = min(2*r.short, shortReadMax)
	}
}

// largeWithRoom reports whether a large message (reader.large) is in a
// value's body with room for its next bytes (none taken by an asynchronous
// sink), whatever else is under way.
func (r *reader) largeWithRoom() bool {
	if r.large == 0 {
		return false
	}
	for _, s := range r.slots {
		if s != nil && s.large && s.phase == rBody && s.async == nil && len(s.dec.ValueSpace()) > 0 {
			return true
		}
	}
	return false
}

// testHookArmAhead, if set by a test before its services start, runs on
// the loop when a read ahead (no packet open) is about to be asked for,
// with the header bytes and the data bytes of its first predicted packet.
var testHookArmAhead func(hdr, data int)

// onReadInto takes n bytes the reactor read straight into the planned
// buffers (loop).
func (c *conn) onReadInto(n int) {
	if testHookReadInto != nil {
		testHookReadInto(n)
	}
	c.lastRecv, c.recvInWindow = c.svc.cfg.Clock.Now(), true
	c.countReceived(n)
	c.dispatching.Store(true)
	var spill []byte
	var err error
	if c.r.plan.on {
		c.r.plan.on = false
		spill, err = c.r.planFilled(n)
	} else {
		err = fmt.Errorf("%w: %d bytes read into no plan", ErrBadChunk, n)
	}
	if err == nil && len(spill) > 0 {
		err = c.feed(spill)
	}
	c.dispatching.Store(false)
	if c.afterFeed(spill, n, err) {
		c.pump()
	}
	c.armReadInto()
}

// testHookReadInto, if set by a test before its services start, runs on
// the loop with the size of each read made straight into a value.
var testHookReadInto func(n int)

// maxPlanPackets is the most packets one direct read predicts: with the
// open packet's rest, 1 + 2*3 buffers; without, 2*4 (reactor.MaxReadIntoBufs).
const maxPlanPackets = reactor.MaxReadIntoBufs / 2

// maxKeptSpill bounds the spill buffer a reader keeps between reads: about
// one packet (a larger one, after a mismatch early in a long plan, is
// dropped after use).
const maxKeptSpill = packetHeaderSize + maxPacketPayload + directTailSize

// readPlan is the direct read asked for (reader-owned): first data bytes
// of the open packet (0: none open), then pkts packets predicted to carry
// the value's next chunks, each as long as the last packet parsed: its
// headers (hdr bytes) into heads[i], its data (lens[i] bytes) into the
// value's space, right after the previous one's. bufs are the buffers in
// read order.
type readPlan struct {
	on    bool // asked for: the next onReadInto is this read's
	slot  uint32
	first int
	hdr   int
	pkts  int
	lens  [maxPlanPackets]int
	heads [maxPlanPackets][directTailSize]byte
	// tail: the plan ends with the headers of a packet of either value
	// (several under way): read into next, they open it (tryOpen) and
	// the next read takes its data straight into its value. cutTail: the
	// plan is only the rest of a cut packet (conn.rest): of its headers,
	// or of the whole packet when it does not open (a value's last chunk
	// with the fields after it, a small message's packet), into spill,
	// and fed the ordinary way.
	tail    bool
	cutTail bool
	next    [directTailSize]byte
	bufs    [reactor.MaxReadIntoBufs][]byte
	spill   []byte // bytes read that go the ordinary way, copied out of the buffers
}

// planRead plans the next direct read and returns its buffers, none when
// no value can take bytes straight from the socket: the open packet's
// remaining data, then as many predicted packets as the value's space and
// the buffers allow. With no packet open, it plans only while every
// message under way is in a value's body with room, and no cut packet
// waits (cut: its bytes in conn.rest), or only the rest of the cut
// packet (cutTail).
//
// With several values under way (an ipcframe sender interleaves large
// messages' packets, ContinuousPackets in a row each), the packets
// predicted are only those the sender's turn still owes the open packet's
// value (packetRun), and the plan ends with the headers of the packet
// after them (tail), whichever value it continues: a chunk header's slot
// is 1 byte long for slot 0 and 2 for slot 1, so a packet of the other
// value does not even parse where a prediction put its headers. With no
// packet open, the plan is those headers alone. When the last read ended
// inside a packet that did not open (cut), with values under way, the
// plan is the rest of its headers, or of the packet if they are in: so
// that a packet of a value opens, and one of anything else completes,
// without gnet reading all the socket holds into its buffer (where the
// values' packets after it would be copied out again).
func (r *reader) planRead(cut []byte) [][]byte {
	p := &r.plan
	p.first, p.pkts, p.tail, p.cutTail = 0, 0, false, false
	clear(p.bufs[:]) // no reference to a value's array outlives its read
	if !r.direct {
		return nil
	}
	var sp []byte
	values, last := r.valuesUnderWay()
	if r.open.on {
		s := r.slot(r.open.slot)
		if s == nil {
			return nil
		}
		p.slot, sp, p.first = r.open.slot, s.dec.ValueSpace(), r.open.rest
		if len(sp) < p.first {
			return nil
		}
	} else {
		if values == 0 {
			return nil
		}
		if len(cut) > 0 {
			return r.planCut(cut) // its bytes complete it first (conn.feed)
		}
		if values > 1 {
			p.tail = true
			p.bufs[0] = p.next[:]
			return p.bufs[:1]
		}
		p.slot, sp = last, r.slots[last].dec.ValueSpace()
	}
	n := 0
	if p.first > 0 {
		p.bufs[n] = sp[:p.first]
		n++
	}
	hl := 1 + serde.CrossLen(uint64(p.slot)) + 2 // the chunk's command, slot, length
	p.hdr = packetHeaderSize + hl
	l := r.pktLen - hl // the last packet's chunk data
	pkts, room := maxPlanPackets, len(p.bufs)
	if values > 1 {
		p.tail = true
		room-- // the tail's headers
		pkts = 0
		if r.run.slot == p.slot {
			pkts = max(r.run.last-r.run.n, 0)
		}
	}
	for off := p.first; l > 0 && off < len(sp) && p.pkts < pkts && n+2 <= room; p.pkts++ {
		d := min(l, len(sp)-off)
		p.lens[p.pkts] = d
		p.bufs[n], p.bufs[n+1] = p.heads[p.pkts][:p.hdr], sp[off:off+d]
		n += 2
		off += d
	}
	if p.tail {
		p.bufs[n] = p.next[:]
		n++
	}
	return p.bufs[:n]
}

// planCut plans the read of the rest of the cut packet (cut, see planRead).
func (r *reader) planCut(cut []byte) [][]byte {
	p := &r.plan
	need := directTailSize
	if len(cut) >= packetHeaderSize {
		h, err := parsePacketHeader(cut, maxPacketPayload)
		if err != nil {
			return nil // the ordinary path rejects it
		}
		need = packetHeaderSize + h.size
		if len(cut) < directTailSize {
			need = min(need, directTailSize)
		}
	}
	if need <= len(cut) {
		return nil
	}
	if cap(p.spill) < need-len(cut) {
		p.spill = make([]byte, need-len(cut), max(need-len(cut), maxKeptSpill))
	}
	p.cutTail = true
	p.bufs[0] = p.spill[:need-len(cut)]
	return p.bufs[:1]
}

// valuesUnderWay returns how many messages the connection is receiving,
// and the slot of the last of them, when every one of them is large (more than smallMessage bytes arrived,
// reader.large) and in a value's body with room for its bytes (none taken
// by an asynchronous sink), 0 otherwise. A small message under way, even
// one decoding into an array that holds it (a recycled message), makes it
// 0, and with no large message under way it costs nothing: small messages
// never get a plan of their own (the tail, or a cut packet's rest read
// alone), which cost 1 KiB echo at c=1024 up to a third of its rate
// (docs/benchmarks.md, "Two values under way and the plain path,
// thirteenth session").
func (r *reader) valuesUnderWay() (n int, last uint32) {
	if r.large == 0 {
		return 0, 0
	}
	for i, s := range r.slots {
		if s == nil {
			continue
		}
		if !s.large || s.phase != rBody || s.async != nil || len(s.dec.ValueSpace()) == 0 {
			return 0, 0
		}
		n, last = n+1, uint32(i)
	}
	return n, last
}

// planFilled takes n bytes read into the planned buffers: the open
// packet's data, then each predicted packet whose headers open a chunk of
// the planned value (tryOpen, all its checks), as far as its data landed
// where predicted. From the first byte that is not so (headers that open
// nothing or another slot's packet, a packet shorter or longer than
// predicted), the rest is copied out of the buffers, in order, and
// returned to be fed the ordinary way; the bytes in the value's space
// beyond its length are read by nobody else meanwhile.
func (r *reader) planFilled(n int) ([]byte, error) {
	p := &r.plan
	if cap(p.spill) > maxKeptSpill {
		p.spill = nil
	}
	if p.cutTail {
		return p.bufs[0][:n], nil // conn.feed joins them to conn.rest
	}
	i := 0 // buffer
	if p.first > 0 {
		k := min(n, p.first)
		if err := r.openFilled(k); err != nil {
			return nil, err
		}
		n -= k
		i++
	}
	for j := 0; j < p.pkts && n > 0; j++ {
		if n < p.hdr {
			return r.gather(nil, i, n), nil // cut headers: conn.feed keeps them
		}
		ok, err := r.tryOpen(p.bufs[i])
		if err != nil {
			return nil, err
		}
		region := p.bufs[i+1]
		d := min(n-p.hdr, len(region))
		if !ok {
			return r.gather(nil, i, n), nil
		}
		if r.open.slot != p.slot {
			// Another slot's packet (its data landed in the planned
			// value's space): the open packet takes it the ordinary way.
			return r.gather(nil, i+1, n-p.hdr), nil
		}
		k := min(d, r.open.rest)
		exact := k == p.lens[j] && r.open.rest == k
		var spill []byte
		if !exact {
			// Copy out before the value takes its bytes (and may complete).
			spill = r.gather(region[k:d], i+2, n-p.hdr-d)
		}
		if err := r.openFilled(k); err != nil {
			return nil, err
		}
		if !exact {
			return spill, nil
		}
		n -= p.hdr + k
		i += 2
	}
	if p.tail && n > 0 {
		// The next packet's headers (and, after short ones, the start of
		// its data): they open it, or go the ordinary way.
		ok, err := r.tryOpen(p.bufs[i][:n])
		if err != nil || ok {
			return nil, err
		}
		return r.gather(nil, i, n), nil
	}
	return nil, nil
}

// gather copies head, then up to n bytes of the plan's buffers from
// buffer i on, into the spill buffer and returns it.
func (r *reader) gather(head []byte, i, n int) []byte {
	p := &r.plan
	s := append(p.spill[:0], head...)
	for ; n > 0 && i < len(p.bufs); i++ {
		k := min(n, len(p.bufs[i]))
		s = append(s, p.bufs[i][:k]...)
		n -= k
	}
	p.spill = s
	return s
}
