package ipc

import (
	"bytes"
	"testing"

	"github.com/ipcframe/ipcframe/serde"

	"github.com/stretchr/testify/require"
)

// TestReadIntoTwoValues: two large values under way at once, their packets
// interleaved as an ipcframe writer sends them (ContinuousPackets in a row
// each, slot 0's chunk headers a byte shorter than slot 1's), arrive
// intact over a real socket with direct reads (the reactor's DirectBytes).
// How many bytes avoid gnet's buffer here depends on the scheduling: each
// time the loop catches up with the writer (EAGAIN) the next readiness is
// gnet's read (reactor/readinto.go), so the bound on copies is checked by
// TestReadIntoTwoValuesPlan, without a socket.
func TestReadIntoTwoValues(t *testing.T) {
	const size = 8 << 20
	srv := startIntoServer(t, func(uint32) int { return size })
	c := dialProven(t, srv, size)

	wire := intoWire(t, newIntoMsg(2, size), newIntoMsg(3, size))
	slots := map[byte]int{}
	for at := 0; at < len(wire); at = intoPacketEnd(t, wire, at) {
		slots[wire[at+packetHeaderSize+1]]++ // the slot's cross prefix
	}
	require.Len(t, slots, 2, "the two values' packets interleaved (slots' prefixes)")

	before := srv.svc.r.Stats().DirectBytes
	_, err := c.Write(wire)
	require.NoError(t, err)
	got := map[uint32]bool{}
	got[lcRecv(t, srv.in, "a value")] = true
	got[lcRecv(t, srv.in, "the other value")] = true
	require.Equal(t, map[uint32]bool{2: true, 3: true}, got)
	direct := srv.svc.r.Stats().DirectBytes - before
	t.Logf("%d of %d wire bytes read straight into the two values", direct, len(wire))
	require.Greater(t, direct, uint64(size), "bytes of the two values read straight into them")

	srv.mu.Lock()
	defer srv.mu.Unlock()
	require.Empty(t, srv.bad)
	require.Equal(t, map[uint32]int{1: 1, 2: 1, 3: 1}, srv.got)
}

// TestReadIntoTwoValuesPlan drives the reader's direct-read plans
// (planRead, planFilled) without a socket: each planned read is filled
// from the wire bytes of two interleaved 8 MiB values (after a proof), as
// the kernel fills a readv when the socket holds enough, or only up to a
// short read's size (150001 bytes: reads ending anywhere, inside headers
// too); while no
// read is planned, gnet's read of 64 KiB is fed the ordinary way. Both
// values decode intact, and the bytes copied (gnet's reads and the bytes
// a read put where they did not belong, spilled and fed again) stay under
// 5 % of the values' (about 2 %: where each value starts, and a turn
// whose length was not yet known). Before the plans followed the sender's
// turns and ended with the next packet's headers, 49 % of the bytes were
// copied with whole reads, 29 % with short ones.
func TestReadIntoTwoValuesPlan(t *testing.T) {
	const size = 8 << 20
	for _, tc := range []struct {
		name    string
		readMax int // the most bytes one read takes (0: all planned)
		limit   int // percent of the values' bytes copied at most
	}{{"whole reads", 0, 5}, {"short reads", 150001, 5}} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewProtocol()
			require.NoError(t, Register(p, 1, func(Context, *intoMsg) {}))
			cfg, err := Config{Protocol: p, Limits: serde.Limits{MaxString: 256 << 20}}.withDefaults()
			require.NoError(t, err)
			e := newWireEnd(t, &cfg)
			e.c.r, e.r.direct = e.r, true
			require.NoError(t, e.c.feed(intoWire(t, newIntoMsg(1, size)))) // the proof
			require.Len(t, e.msgs, 1)

			wire := intoWire(t, newIntoMsg(2, size), newIntoMsg(3, size))
			copied := 0
			for len(wire) > 0 {
				bufs := e.r.planRead(e.c.rest)
				if len(bufs) == 0 {
					k := min(64<<10, len(wire))
					copied += k
					require.NoError(t, e.c.feed(wire[:k]))
					wire = wire[k:]
					continue
				}
				n, room := 0, len(wire)
				if tc.readMax > 0 {
					room = min(room, tc.readMax)
				}
				for _, b := range bufs {
					k := copy(b, wire[n:room])
					n += k
					if k < len(b) {
						break
					}
				}
				wire = wire[n:]
				spill, err := e.r.planFilled(n)
				require.NoError(t, err)
				copied += len(spill)
				if len(spill) > 0 {
					require.NoError(t, e.c.feed(spill))
				}
			}
			t.Logf("%d of %d bytes copied", copied, 2*size)
			require.Len(t, e.msgs, 3)
			for _, m := range e.msgs[1:] {
				m := m.(*intoMsg)
				require.True(t, bytes.Equal(m.Data, segPayload(size, byte(m.Seq))) && m.Tail == m.Seq*3, "value %d intact", m.Seq)
			}
			require.LessOrEqual(t, copied, 2*size*tc.limit/100, "bytes copied")
		})
	}
}
