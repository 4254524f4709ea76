package ipc

import (
	"encoding/binary"
	"fmt"

	"github.com/ipcframe/ipcframe/serde"
)

// Reading large values straight from the socket (plain TCP).
//
// A []byte or string value whose whole array exists before its bytes
// arrive (the connection's receive budget lent it, recvbudget.go, or a
// recycled message's array holds it) need not pass through the loop's read
// buffer: the reader opens the packet that carries its next bytes as soon
// as the packet's headers are in, when that packet holds nothing but one
// chunk of the value, and the connection asks the reactor to read the rest
// of the chunk from the socket straight into the value's array
// (reactor.Conn.ReadInto), with the next packet's headers (as long as this
// packet's) into a small tail buffer. The tail then goes through the
// ordinary path: if it opens the next packet of the value the next read
// follows at once, so a 64 KiB packet costs one readv(2) and no copy of its
// data; anything else in it is kept as a cut packet (conn.rest).
//
// A feed that ends exactly at a packet's end leaves nothing open, and the
// next readiness would go to gnet, whose read takes everything the socket
// holds (up to 256 KiB) through the loop's buffer. On loopback the sender's
// writes land whole, so a receiver that keeps up sees exactly that after
// nearly every EAGAIN: without more, two thirds of a 64 MiB value came
// through the loop's buffer (docs/benchmarks.md, "64 MiB one way,
// receiving side, ninth session"). So while the connection's only message
// is a value with room and no packet is open or cut, the reader reads
// ahead: the next packet's headers, as long as those of a chunk of that
// value, into the tail, and the data a packet as long as the last one
// would carry straight into the value's space (aheadRead). If the headers
// open a packet of that value (tryOpen, all its checks), the bytes that
// landed are its data; bytes beyond its end, or all of them if the headers
// turn out to be anything else, are copied out of the value's space (whose
// bytes beyond the value's length nobody reads) and fed through the
// ordinary path, as if gnet had read them.
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
	hdr  int // the packet's header bytes: packet header and chunk header
}

// directTailSize is the room of the reader's tail buffer: a packet header
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
	r.open = openChunk{
		on:   true,
		end:  p[0] == cmdEndMessage,
		ack:  h.flags&packetFlagAckRequest != 0,
		slot: uint32(slot),
		rest: l,
		hdr:  packetHeaderSize + hl,
	}
	if data := p[hl:]; len(data) > 0 {
		return true, r.openPiece(data, 0)
	}
	return true, nil
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

// openSpace returns the memory the open packet's remaining data goes to,
// nil when no packet is open or its value has no room (then its bytes come
// through the loop's buffer).
func (r *reader) openSpace() []byte {
	if !r.open.on {
		return nil
	}
	s := r.slot(r.open.slot)
	if s == nil {
		return nil
	}
	sp := s.dec.ValueSpace()
	if len(sp) < r.open.rest {
		return nil
	}
	return sp[:r.open.rest]
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

// armReadInto asks the reactor to read the open packet's remaining data
// straight into its value, and the next packet's headers into the tail
// (loop, after a feed).
func (c *conn) armReadInto() {
	c.r.ahead.on = false
	if c.closed || c.raw {
		return
	}
	if sp := c.r.openSpace(); sp != nil {
		c.rc.ReadInto(sp, c.r.tail[:c.r.open.hdr])
		return
	}
	if len(c.rest) > 0 {
		return // a cut packet: its bytes complete it first (conn.feed)
	}
	if hdr, sp := c.r.aheadSpace(); sp != nil {
		if testHookArmAhead != nil {
			testHookArmAhead(hdr, len(sp))
		}
		c.r.ahead.on = c.rc.ReadInto(c.r.tail[:hdr], sp)
		c.r.ahead.hdr = hdr
	}
}

// testHookArmAhead, if set by a test before its services start, runs on
// the loop when a read ahead is about to be asked for, with the header
// bytes and the value space it names.
var testHookArmAhead func(hdr, space int)

// onReadInto takes n bytes the reactor read straight into the open
// packet's value and, beyond its data, into the tail (loop).
func (c *conn) onReadInto(n int) {
	if testHookReadInto != nil {
		testHookReadInto(n)
	}
	c.lastRecv, c.recvInWindow = c.svc.cfg.Clock.Now(), true
	c.countReceived(n)
	c.dispatching.Store(true)
	var tail []byte
	var err error
	if c.r.ahead.on {
		c.r.ahead.on = false
		tail, err = c.r.aheadFilled(n)
	} else {
		k := min(n, c.r.open.rest)
		err = c.r.openFilled(k)
		tail = c.r.tail[:n-k]
	}
	if err == nil && len(tail) > 0 {
		err = c.feed(tail)
	}
	c.dispatching.Store(false)
	if c.afterFeed(tail, n, err) {
		c.pump()
	}
	c.armReadInto()
}

// testHookReadInto, if set by a test before its services start, runs on
// the loop with the size of each read made straight into a value.
var testHookReadInto func(n int)

// aheadRead is a direct read armed while no packet is open: the next
// packet's headers into the tail, its predicted data into a value's space
// (see above; reader-owned).
type aheadRead struct {
	on    bool   // armed: the next onReadInto is this read's
	hdr   int    // header bytes asked for in the tail
	spill []byte // bytes read ahead that are not the value's, copied out to be fed; kept for the next time
}

// aheadSpace returns the length of the headers of a packet carrying the
// next chunk of the value being received, and the space its data would
// fill if the packet is as long as the last one, when the connection's only
// message under way is in its body with such room; else 0, nil.
func (r *reader) aheadSpace() (int, []byte) {
	if !r.direct || r.open.on || r.pktLen == 0 {
		return 0, nil
	}
	var sp []byte
	slot := -1
	for i, s := range r.slots {
		if s == nil {
			continue
		}
		if slot >= 0 || s.phase != rBody || s.async != nil {
			return 0, nil
		}
		slot, sp = i, s.dec.ValueSpace()
	}
	hl := 1 + serde.CrossLen(uint64(slot)) + 2 // the chunk's command, slot, length
	if slot < 0 || len(sp) == 0 || r.pktLen <= hl {
		return 0, nil
	}
	return packetHeaderSize + hl, sp[:min(len(sp), r.pktLen-hl)]
}

// aheadFilled takes n bytes of a read armed by aheadSpace: the headers in
// the tail, then data in the value's space. It returns the bytes that must
// go through the ordinary path (conn.feed), which no longer alias the
// value's space.
func (r *reader) aheadFilled(n int) ([]byte, error) {
	hdr := r.ahead.hdr
	if n <= hdr {
		return r.tail[:n], nil // a cut header: conn.feed keeps it
	}
	var sp []byte
	for _, s := range r.slots {
		if s != nil {
			sp = s.dec.ValueSpace()
			break
		}
	}
	d := n - hdr // landed in sp
	if d > len(sp) {
		return nil, fmt.Errorf("%w: %d bytes read ahead into a value with room for %d", ErrBadChunk, d, len(sp))
	}
	ok, err := r.tryOpen(r.tail[:hdr])
	if err != nil {
		return nil, err
	}
	if !ok {
		// Not a chunk of the value: everything read goes the ordinary way.
		r.ahead.spill = append(append(r.ahead.spill[:0], r.tail[:hdr]...), sp[:d]...)
		return r.ahead.spill, nil
	}
	k := min(d, r.open.rest)
	// Bytes beyond the packet leave the value's space before the value
	// takes the packet's data (and may complete).
	r.ahead.spill = append(r.ahead.spill[:0], sp[k:d]...)
	if err := r.openFilled(k); err != nil {
		return nil, err
	}
	return r.ahead.spill, nil
}
