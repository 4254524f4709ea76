package ipc

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// besideWire returns the wire bytes of one large intoMsg (seq 2, size
// bytes) with a 1 KiB intoMsg (seq 100, 101, ...) queued after every
// every-th packet, as an ipcframe writer interleaves them (64 KiB
// packets), and where each message is complete: ends[i] is the wire
// offset after which i+1 messages have been dispatched (a plain reader,
// fed packet by packet).
func besideWire(t *testing.T, size, every int) (wire []byte, ends []int) {
	t.Helper()
	cfg := intoConfig(t)
	w, ref := newWireEnd(t, &cfg), newWireEnd(t, &cfg)
	w.send(newIntoMsg(2, size), 0)
	buf := make([]byte, packetHeaderSize+maxPacketPayload)
	for pkts, small := 0, uint32(100); w.w.hasOutput(); pkts++ {
		if pkts%every == every-1 {
			w.send(newIntoMsg(small, 1<<10), 0)
			small++
		}
		n, err := w.w.fill(buf)
		require.NoError(t, err)
		require.NotZero(t, n)
		wire = append(wire, buf[:n]...)
		before := len(ref.msgs)
		ref.input(buf[:n])
		for range len(ref.msgs) - before {
			ends = append(ends, len(wire))
		}
	}
	return wire, ends
}

// TestReadIntoBesideSmallPlan drives the reader's direct-read plans
// (planRead, planFilled) without a socket while small messages arrive
// beside a large value (reader.beside, as the connection sets it): an
// 8 MiB value with a 1 KiB message after every third of its 64 KiB
// packets. Each planned read is filled from the wire as the kernel fills
// a readv (all it asks for, or at most 150001 bytes: reads ending
// anywhere); while none is planned, gnet's read of 100003 bytes is fed the
// ordinary way. Every plan starts with the rest of an open packet of the
// large value and has no tail and no cut packet's rest (a small message's
// packet is never read in a system call of its own); every small message
// is dispatched in the read that brought its last byte; most of the
// value's bytes are read straight into it; all messages arrive intact.
// main plans reads ahead with no packet open beside small messages (and
// its reactor makes no direct read there at all, SetInterleaved).
func TestReadIntoBesideSmallPlan(t *testing.T) {
	const size, every = 8 << 20, 3
	for _, tc := range []struct {
		name    string
		readMax int // the most bytes one planned read takes (0: all planned)
	}{{"whole reads", 0}, {"short reads", 150001}} {
		t.Run(tc.name, func(t *testing.T) {
			e := provenIntoEnd(t, size)
			e.r.beside = true

			wire, ends := besideWire(t, size, every)
			require.Greater(t, len(ends), 20, "small messages beside the value")
			pos, direct, plans := 0, 0, 0
			for pos < len(wire) {
				bufs := e.r.planRead(e.c.rest)
				if len(bufs) == 0 {
					k := min(100003, len(wire)-pos)
					require.NoError(t, e.c.feed(wire[pos:pos+k]))
					pos += k
				} else {
					plans++
					require.True(t, e.r.plan.first > 0 && !e.r.plan.tail && !e.r.plan.cutTail,
						"plan %d at wire offset %d: starts with an open packet's rest (first %d), no tail (%v), no cut packet's rest (%v)",
						plans, pos, e.r.plan.first, e.r.plan.tail, e.r.plan.cutTail)
					n, room := 0, len(wire)
					if tc.readMax > 0 {
						room = min(room, pos+tc.readMax)
					}
					for _, b := range bufs {
						k := copy(b, wire[pos+n:room])
						n += k
						if k < len(b) {
							break
						}
					}
					pos += n
					spill, err := e.r.planFilled(n)
					require.NoError(t, err)
					direct += n - len(spill)
					if len(spill) > 0 {
						require.NoError(t, e.c.feed(spill))
					}
				}
				done := 0 // messages whose last byte has been read
				for done < len(ends) && ends[done] <= pos {
					done++
				}
				require.Equal(t, 1+done, len(e.msgs), "messages dispatched after %d wire bytes", pos)
			}
			t.Logf("%d plans, %d of %d wire bytes read straight into the value", plans, direct, len(wire))
			require.Len(t, e.msgs, 1+len(ends))
			for _, m := range e.msgs[1:] {
				m := m.(*intoMsg)
				n := 1 << 10
				if m.Seq == 2 {
					n = size
				}
				require.True(t, bytes.Equal(m.Data, segPayload(n, byte(m.Seq))) && m.Tail == m.Seq*3, "message %d intact", m.Seq)
			}
			require.Greater(t, direct, size/8, "bytes read straight into the value")
		})
	}
}
