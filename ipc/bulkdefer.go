package ipc

// Copying a large value's bytes after the small messages of the same feed.
//
// One read of a connection beside a large message typically holds tens of
// KiB of the large value's chunks and then a small message (a request, or
// the response a caller waits for). Decoded in wire order, the small
// message waits for the value's bytes ahead of it to be copied out of the
// read buffer into the value's array, whose fresh pages fault in as they
// are written: about 20 µs p50 per c=1 call on the server's loop
// (docs/benchmarks.md, "Head-of-line at c=1, tenth session").
//
// The bytes of different messages are independent, so the reader leaves
// the value's bytes where they are while it parses the feed: a chunk that
// goes into the array of a value with room for it (serde.Decoder.ValueSpace)
// and does not complete the value is charged to the message's window and
// counted at once, in wire order, and its data is only noted (valueDefer).
// Every other message's commands are decoded and dispatched as they come.
// The noted bytes are copied into the value, in order, and reported to
// the decoder (Filled) before anything else touches that message: its next
// chunk that cannot wait (the one that completes it), a command that names
// its slot (CancelMessage drops them with the message), and at the latest
// at the end of the feed, while the input is still valid. When a feed
// dispatched a message and noted at least yieldInput bytes, the output
// the dispatch produced is written before the copy (reader.flushOut), as a
// mid-feed flush would have written it had the bytes been copied first.
//
// Nothing changes in what any message receives or when a message
// completes relative to the others: only the copy of a value's middle moves
// later within one feed. Compressed packets are decoded into a scratch
// buffer that the next packet reuses, so their bytes are never noted.

// valueDefer is the large value whose bytes a feed noted but has not
// copied yet (reader-owned; empty between feeds).
type valueDefer struct {
	s     *rslot   // the message; nil: nothing noted
	slot  uint32   // its slot
	n     int      // bytes noted
	parts [][]byte // the noted data, slices of the feed's input in wire order
	// passed is set when a message was dispatched while bytes were noted.
	passed bool
}

// deferBody notes data, body bytes of the message in s (slot), instead of
// decoding them, when they can wait (see above), and reports whether it
// did; the caller has charged them to the message's window. A noted value
// of another message is copied first.
func (r *reader) deferBody(s *rslot, slot uint32, data []byte, end bool) (bool, error) {
	d := &r.def
	if !r.deferOK || end || len(data) == 0 || s.async != nil {
		return false, nil
	}
	n := 0
	if d.s == s {
		n = d.n
	}
	if len(s.dec.ValueSpace())-n <= len(data) {
		return false, nil // the bytes complete the value: decoded now
	}
	if d.s != s {
		if err := r.flushDeferred(); err != nil {
			return false, err
		}
		d.s, d.slot = s, slot
	}
	d.parts = append(d.parts, data)
	d.n += len(data)
	return true, nil
}

// flushDeferred copies the noted bytes into their value and decodes them.
func (r *reader) flushDeferred() error {
	d := &r.def
	if d.s == nil {
		return nil
	}
	s, slot, n := d.s, d.slot, d.n
	space := s.dec.ValueSpace()
	off := 0
	for i, p := range d.parts {
		off += copy(space[off:], p)
		d.parts[i] = nil
	}
	d.parts, d.s, d.n, d.passed = d.parts[:0], nil, 0, false
	return r.decodeBody(s, slot, nil, n, false)
}

// endDeferred ends a feed's noting (reader.feed, conn.feed) that returned
// err: the noted bytes are copied into their value, after the output of
// the messages dispatched ahead of them was written when they are many;
// dropped when the feed failed (the connection closes).
func (r *reader) endDeferred(err error) error {
	d := &r.def
	if err != nil || d.s == nil {
		r.dropDeferred(d.s)
		return err
	}
	if d.passed && d.n >= yieldInput {
		// As a mid-feed flush (reader.feedPackets) would have done had the
		// bytes been copied first.
		if !r.flushOut() {
			r.dropDeferred(d.s)
			return errClosedMidFeed
		}
		r.yield()
		if !r.flushOut() {
			r.dropDeferred(d.s)
			return errClosedMidFeed
		}
	}
	return r.flushDeferred()
}

// dropDeferred forgets the noted bytes of the message in s, which is
// abandoned (reader.release).
func (r *reader) dropDeferred(s *rslot) {
	d := &r.def
	if d.s != s || s == nil {
		return
	}
	clear(d.parts)
	d.parts, d.s, d.n, d.passed = d.parts[:0], nil, 0, false
}
