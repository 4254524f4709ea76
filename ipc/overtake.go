package ipc

// Small messages overtaking the copy of a large message's bytes.
//
// Beside a large message arriving, a read brings up to a window of its
// bytes (128 KiB beside small messages, window.go), and the loop copies
// them into the message's value before it reads again; a small message
// arriving meanwhile waits in the socket for the rest of that copy. At
// concurrency 1 that is where a request waits on the receiving side of
// one-way bulk: the request leg's p99 was 2–5× idle, and a poll every
// 32 KiB of such a copy found a few KiB waiting for up to a fifth of the
// calls (docs/benchmarks.md, "Head-of-line at c=1, twelfth session").
//
// So every overtakeEvery bytes of a read's input decoded while a large
// message is arriving, with at least overtakeLeft of it left, the reader
// asks the connection (conn.overtake) to look at the socket. If the rest
// of the read holds only whole packets of continuation chunks (cmdMessage:
// no message starts, ends or is canceled there, so no completion can be
// reordered, synchronous messages included), and the socket holds at most
// overtakeMax new bytes, the connection reads them aside
// (reactor.Conn.ReadSide) and decodes at once the leading whole packets
// among them that hold only messages that start on idle slots and end
// among them, and window grants: those are dispatched, and their output flushed,
// ahead of the rest of the copy. Everything else read aside is fed after
// the read, in order (consume). Plain TCP only (a TLS connection's records
// need decrypting), never on a relaying service, compressed packets and
// relay acknowledgements are left in order; at most one read aside is
// pending per read.

const (
	// overtakeEvery is how much of a read's input the reader decodes
	// between two looks at the socket.
	overtakeEvery = 32 << 10
	// overtakeLeft is the least input left to decode for a look: less is
	// decoded sooner than a look pays for.
	overtakeLeft = 32 << 10
	// overtakeMax is the most waiting input read aside: a few small
	// messages; more is likely the large message's next bytes.
	overtakeMax = smallMessage + 1024
)

// overtake looks at the socket in the middle of a read's input, rest being
// the input not yet decoded (loop; reader.feed, through reader.overtake).
// It reports whether it dispatched messages ahead of rest, and an error if
// the connection must close.
func (c *conn) overtake(rest []byte) (bool, error) {
	if len(c.aside) > 0 || c.relay != nil {
		return false, nil
	}
	_, cut, ok := c.r.continuations(rest)
	if !ok {
		return false, nil
	}
	n := c.rc.SideInput()
	if n == 0 || n > overtakeMax+maxPacketPayload {
		return false, nil
	}
	if c.sideBuf == nil {
		c.sideBuf = make([]byte, overtakeMax+packetHeaderSize+maxPacketPayload)
	}
	// need: the bytes that complete the packet the read cut, if any.
	need := 0
	if len(cut) > 0 {
		if need, ok = c.r.cutContinuation(cut, n); !ok {
			return false, nil
		}
	}
	if n <= need || n-need > overtakeMax {
		return false, nil
	}
	if n = c.rc.ReadSide(c.sideBuf[:n]); n == 0 {
		return false, nil
	}
	c.countReceived(n)
	c.sideUse = true
	side := c.sideBuf[:n]
	if n < need || !c.r.cutEnds(cut, side[:need]) {
		c.aside = side // fed after the read, in order
		return false, nil
	}
	k := c.r.overtakers(side[need:])
	if k == 0 {
		c.aside = side
		return false, nil
	}
	if testHookOvertake != nil {
		testHookOvertake(k)
	}
	ahead := side[need : need+k]
	if _, err := c.r.feed(ahead); err != nil {
		return false, err
	}
	// What follows the read: the cut packet's end, then the rest of what
	// was read aside.
	m := copy(side[need:], side[need+k:])
	c.aside = side[:need+m]
	return true, nil
}

// continuations splits b, the rest of a read, into its whole packets and
// the packet the read cut at its end (empty if none), and reports whether
// the whole packets hold only continuation chunks of messages under way
// (cmdMessage) and keepalives.
func (r *reader) continuations(b []byte) (whole, cut []byte, ok bool) {
	k := 0
	for k < len(b) {
		if len(b)-k < packetHeaderSize {
			break
		}
		h, err := parsePacketHeader(b[k:], r.maxPayload)
		if err != nil || h.flags&packetFlagCompressed != 0 {
			return nil, nil, false
		}
		if len(b)-k < packetHeaderSize+h.size {
			break
		}
		p := b[k+packetHeaderSize : k+packetHeaderSize+h.size]
		k += packetHeaderSize + h.size
		if h.typ == packetTypeKeepAlive {
			continue
		}
		if isHello(p) {
			return nil, nil, false
		}
		for len(p) > 0 {
			cmd, n, err := parseCommand(p, r.maxSlots)
			if err != nil || cmd.code != cmdMessage || !r.underWay(cmd.slot) {
				return nil, nil, false
			}
			p = p[n:]
		}
	}
	return b[:k], b[k:], true
}

// underWay reports whether a message is under way in the peer's slot i.
func (r *reader) underWay(i uint32) bool {
	s := r.slot(i)
	return s != nil && s.phase != rIdle
}

// cutContinuation checks the packet cut, whose start ends a read, against
// the input waiting in the socket (avail bytes): it returns how many more
// bytes complete it, ok false unless its header is whole, it is a data
// packet, uncompressed, and all of its chunk headers present in cut are
// continuation chunks (cutEnds checks the others once read).
func (r *reader) cutContinuation(cut []byte, avail int) (need int, ok bool) {
	if len(cut) < packetHeaderSize {
		return 0, false
	}
	h, err := parsePacketHeader(cut, r.maxPayload)
	if err != nil || h.typ != packetTypeData || h.flags&packetFlagCompressed != 0 || h.size == 0 {
		return 0, false
	}
	need = packetHeaderSize + h.size - len(cut)
	if need <= 0 || need > avail {
		return 0, false
	}
	return need, true
}

// cutEnds reports whether the packet cut at a read's end, completed by
// end, holds only continuation chunks of messages under way.
func (r *reader) cutEnds(cut, end []byte) bool {
	if len(cut) == 0 {
		return len(end) == 0
	}
	size := len(cut) + len(end) - packetHeaderSize
	off := 0 // in the payload
	var hb [chunkHeaderMax]byte
	at := func(i int) byte { // byte i of the payload
		if j := packetHeaderSize + i; j < len(cut) {
			return cut[j]
		}
		return end[packetHeaderSize+i-len(cut)]
	}
	for off < size {
		m := min(len(hb), size-off)
		for i := range m {
			hb[i] = at(off + i)
		}
		if hb[0] != cmdMessage {
			return false
		}
		slot, sn, err := parseCross(hb[1:m], cmdMessage, "slot")
		if err != nil || slot >= uint64(r.maxSlots) || !r.underWay(uint32(slot)) || 1+sn+2 > m {
			return false
		}
		l := int(hb[1+sn]) | int(hb[2+sn])<<8
		off += 1 + sn + 2 + l
	}
	return off == size
}

// overtakers returns the length of the leading whole packets of b that
// may be decoded ahead of continuation chunks of other messages: messages
// that start on an idle slot and end within them (NewMessage, Message,
// EndMessage, or FullMessage), window grants and keepalives, up to the
// last packet boundary where every message they started has ended.
func (r *reader) overtakers(b []byte) int {
	var open overtakeSlots
	k, whole := 0, 0
	for k < len(b) {
		h, p, ok := r.wholePacket(b[k:])
		if !ok || h.flags&packetFlagAckRequest != 0 {
			break
		}
		if h.typ != packetTypeKeepAlive && (len(p) == 0 || isHello(p) || !r.overtakes(p, &open)) {
			break
		}
		k += packetHeaderSize + len(p)
		if open.n == 0 {
			whole = k
		}
	}
	return whole
}

// overtakeSlots are the slots whose message started in the input being
// checked by overtakers and has not ended yet.
type overtakeSlots struct {
	n    int
	slot [4]uint32
}

func (o *overtakeSlots) find(slot uint32) int {
	for i := range o.n {
		if o.slot[i] == slot {
			return i
		}
	}
	return -1
}

// overtakes reports whether the payload p may go ahead (overtakers),
// noting in open the messages that start and end in it.
func (r *reader) overtakes(p []byte, open *overtakeSlots) bool {
	for len(p) > 0 {
		cmd, n, err := parseCommand(p, r.maxSlots)
		if err != nil {
			return false
		}
		p = p[n:]
		at := open.find(cmd.slot)
		switch cmd.code {
		case cmdNewMessage, cmdFullMessage:
			if s := r.slot(cmd.slot); (s != nil && s.phase != rIdle) || at >= 0 {
				return false
			}
			if cmd.code == cmdNewMessage {
				if open.n == len(open.slot) {
					return false
				}
				open.slot[open.n] = cmd.slot
				open.n++
			}
		case cmdMessage, cmdEndMessage:
			if at < 0 {
				return false
			}
			if cmd.code == cmdEndMessage {
				open.n--
				open.slot[at] = open.slot[open.n]
			}
		case cmdWindow:
			if !r.helloSeen {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// wholePacket parses the packet at the front of b: its header and payload,
// ok false if b does not hold it whole, it is malformed or compressed.
func (r *reader) wholePacket(b []byte) (h packetHeader, p []byte, ok bool) {
	if len(b) < packetHeaderSize {
		return h, nil, false
	}
	h, err := parsePacketHeader(b, r.maxPayload)
	if err != nil || len(b) < packetHeaderSize+h.size || h.flags&packetFlagCompressed != 0 {
		return h, nil, false
	}
	return h, b[packetHeaderSize : packetHeaderSize+h.size], true
}

// testHookOvertake, if set by a test before its services start, runs on
// the loop with the bytes of each run of packets decoded ahead.
var testHookOvertake func(n int)
