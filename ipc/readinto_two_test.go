package ipc

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadIntoTwoValues: two large values under way at once, their packets
// interleaved as an ipcframe writer sends them (ContinuousPackets in a row
// each, slot 0's chunk headers a byte shorter than slot 1's), are read
// straight from the socket into their arrays, not copied through gnet's
// buffer. A raw peer proves the size, then writes the two messages'
// bytes. Both values arrive intact, and at least 90 % of their bytes were
// read straight into them (the reactor's DirectBytes; the rest is headers
// and bytes that went the ordinary way where a read ended inside a
// packet's headers). Before the plan ended with the next packet's headers
// and followed the sender's turns (readPlan.tail, packetRun), a packet of
// the other value broke the prediction and about half the bytes spilled.
func TestReadIntoTwoValues(t *testing.T) {
	const size = 4 << 20
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
	require.GreaterOrEqual(t, direct, uint64(2*size*9/10), "bytes of the two values read straight into them")

	srv.mu.Lock()
	defer srv.mu.Unlock()
	require.Empty(t, srv.bad)
	require.Equal(t, map[uint32]int{1: 1, 2: 1, 3: 1}, srv.got)
}
