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
	if len(c.aside) > 0 || c.relay != nil || !c.r.onlyContinuations(rest) {
		return false, nil
	}
	n := c.rc.SideInput()
	if n == 0 || n > overtakeMax {
		return false, nil
	}
	if c.sideBuf == nil {
		c.sideBuf = make([]byte, overtakeMax)
	}
	if n = c.rc.ReadSide(c.sideBuf[:n]); n == 0 {
		return false, nil
	}
	c.countReceived(n)
	c.sideUse = true
	side := c.sideBuf[:n]
	k := c.r.overtakers(side)
	c.aside = side[k:]
	if k == 0 {
		return false, nil
	}
	if testHookOvertake != nil {
		testHookOvertake(k)
	}
	if _, err := c.r.feed(side[:k]); err != nil {
		return false, err
	}
	return true, nil
}

// testHookOvertake, if set by a test before its services start, runs on
// the loop with the bytes of each run of packets decoded ahead.
var testHookOvertake func(n int)

// onlyContinuations reports whether b is whole packets holding only
// continuation chunks (cmdMessage) and keepalives.
func (r *reader) onlyContinuations(b []byte) bool {
	for len(b) > 0 {
		h, p, ok := r.wholePacket(b)
		if !ok {
			return false
		}
		b = b[packetHeaderSize+len(p):]
		if h.typ == packetTypeKeepAlive {
			continue
		}
		if isHello(p) {
			return false
		}
		for len(p) > 0 {
			cmd, n, err := parseCommand(p, r.maxSlots)
			if err != nil || cmd.code != cmdMessage {
				return false
			}
			p = p[n:]
		}
	}
	return true
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
