package ipc

// The writer's side of a relayed message: its header is encoded as any
// other's (from the relay stub's fields), its body is copied from the
// chunks its source queued, never decoded (docs/relay.md).

// writeRelayBody writes the next body chunk of the relayed message in slot
// i, the front of the write queue, at p[*off:], and reports whether the
// packet is full. With no chunk queued, the slot leaves the write queue
// (slotParked) until its source pushes one (unpark).
func (w *writer) writeRelayBody(i int32, p []byte, off *int) (full bool, err error) {
	s := &w.slots[i]
	if s.startPending {
		return true, nil // its WindowStart did not fit this packet: next one
	}
	rm := s.st.relay
	ch, ok := rm.front()
	if !ok {
		w.wq.pop()
		w.setLarge(s, false)
		s.phase = slotParked
		return false, nil
	}
	if s.windowed && s.credit == 0 {
		w.block(i) // window.go: until the peer grants more
		return false, nil
	}
	c := p[*off:]
	dataOff := putChunkStart(c, cmdMessage, uint32(i))
	data := ch.data[rm.head:]
	n := min(len(data), len(c)-dataOff, maxChunkData)
	if s.windowed {
		n = int(min(int64(n), s.credit))
		s.credit -= int64(n)
	}
	copy(c[dataOff:], data[:n])
	rm.head += n
	rm.took(n)
	last := ch.end && rm.head == len(ch.data)
	code := uint8(cmdMessage)
	if last {
		code = cmdEndMessage
	}
	finishChunk(c, code, n)
	*off += dataOff + n
	if rm.head == len(ch.data) {
		rm.head = 0
		rm.pop()
		if ch.buf != nil {
			ch.buf.release()
		}
	}
	if last {
		w.finish(i)
		return false, nil
	}
	if s.windowed && s.credit == 0 {
		w.block(i)
		return false, nil
	}
	if len(p)-*off >= minFreePacketData {
		return false, nil
	}
	s.cont++
	if s.cont >= w.contPackets && w.wq.len() > 1 {
		s.cont = 0
		w.wq.push(w.wq.pop())
	}
	return true, nil
}

// unpark puts the parked relay stub st back in the write queue: its source
// pushed a chunk (loop, from the relay mailbox).
func (w *writer) unpark(st *msgStub) {
	i := st.slot
	if i < 0 || int(i) >= len(w.slots) || w.slots[i].st != st || w.slots[i].phase != slotParked {
		return
	}
	s := &w.slots[i]
	s.phase = slotBody
	w.setLarge(s, s.bytes > smallMessage)
	w.wq.push(i)
}

// relayWaiting returns the relay stub waiting in our writer for the answer
// with recipient id (index, unique), or nil.
func (w *writer) relayWaiting(index, unique uint32) *msgStub {
	i := int64(index) - 1
	if i < 0 || i >= int64(len(w.slots)) {
		return nil
	}
	s := &w.slots[i]
	if s.unique != unique || s.phase != slotWait || s.st == nil || s.st.relay == nil {
		return nil
	}
	return s.st
}
