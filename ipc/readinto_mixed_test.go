package ipc

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// mixedEnds returns a sending and a receiving socket-free end for intoMsg
// (wireharness_test.go); the receiver feeds through conn.feed, as a
// plain-TCP connection's loop does, with reading into values on.
func mixedEnds(t *testing.T) (tx, rx *wireEnd) {
	t.Helper()
	p := NewProtocol()
	require.NoError(t, Register(p, 1, func(Context, *intoMsg) {}))
	cfg, err := Config{Protocol: p, Limits: serde.Limits{MaxString: 256 << 20}}.withDefaults()
	require.NoError(t, err)
	tx, rx = newWireEnd(t, &cfg), newWireEnd(t, &cfg)
	rx.c.r = rx.r
	rx.r.direct = true
	return tx, rx
}

// packets returns the next k packets the writer fills (all it has if
// fewer), each of at most a full packet.
func (e *wireEnd) packets(k int) [][]byte {
	e.t.Helper()
	var out [][]byte
	buf := make([]byte, packetHeaderSize+maxPacketPayload)
	for ; k > 0 && e.w.hasOutput(); k-- {
		n, err := e.w.fill(buf)
		require.NoError(e.t, err)
		out = append(out, bytes.Clone(buf[:n]))
	}
	return out
}

// mixedWire returns the wire of a large value (after the one that proves
// its size) with a small message queued halfway through it, and the index
// of the packet that carries the small message ahead of a chunk of the
// large one.
func mixedWire(t *testing.T, tx *wireEnd, size int) (proof []byte, pkts [][]byte, mixed int) {
	t.Helper()
	tx.send(newIntoMsg(1, size), 0)
	proof = tx.output(packetHeaderSize + maxPacketPayload)
	tx.send(newIntoMsg(2, size), 0)
	pkts = tx.packets(size / maxPacketPayload / 2)
	tx.send(newIntoMsg(3, 100), 0)
	mixed = len(pkts)
	pkts = append(pkts, tx.packets(1<<20)...)
	tx.output(packetHeaderSize + maxPacketPayload) // completions
	return proof, pkts, mixed
}

// TestReadIntoMixedPacket: a small message that the sender packed ahead of
// a large value's chunk (one packet: the small message whole, then a chunk
// that runs to the packet's end) is dispatched as soon as the packet's
// bytes up to the chunk's data are in, not once the chunk's data behind it
// has arrived; the chunk's data then goes to the value as it comes, and
// every message arrives intact, exactly once.
func TestReadIntoMixedPacket(t *testing.T) {
	const size = 1 << 20
	tx, rx := mixedEnds(t)
	proof, pkts, mixed := mixedWire(t, tx, size)

	// The packet the test is about: the small message whole, then the
	// large value's chunk to the end of the packet.
	p := pkts[mixed][packetHeaderSize:]
	cmd, n, err := parseCommand(p, rx.r.maxSlots)
	require.NoError(t, err)
	require.Contains(t, []byte{cmdNewMessage, cmdFullMessage}, cmd.code, "the small message first")
	small := cmd.slot
	for cmd.code != cmdEndMessage || cmd.slot != small {
		p = p[n:]
		cmd, n, err = parseCommand(p, rx.r.maxSlots)
		require.NoError(t, err)
	}
	p = p[n:]
	cmd, n, err = parseCommand(p, rx.r.maxSlots)
	require.NoError(t, err)
	require.Equal(t, byte(cmdMessage), cmd.code, "a chunk of the large value after it")
	require.NotEqual(t, small, cmd.slot)
	require.Len(t, p, n, "the chunk runs to the packet's end")
	cut := len(pkts[mixed]) - len(p) + n/2 // inside the chunk's data

	var opened []int
	testHookMixedOpen = func(off int) { opened = append(opened, off) }
	t.Cleanup(func() { testHookMixedOpen = nil })
	require.NoError(t, rx.c.feed(proof))
	require.Len(t, rx.msgs, 1)
	for _, b := range pkts[:mixed] {
		require.NoError(t, rx.c.feed(b))
	}
	require.NoError(t, rx.c.feed(pkts[mixed][:cut]))
	require.Len(t, rx.msgs, 2, "the small message ahead of the chunk, before the chunk's data is in")
	require.Equal(t, uint32(3), rx.msgs[1].(*intoMsg).Seq)
	require.Len(t, opened, 1)
	require.Empty(t, rx.c.rest, "the chunk's data went to the value, not to the cut-packet buffer")
	require.NoError(t, rx.c.feed(pkts[mixed][cut:]))
	for _, b := range pkts[mixed+1:] {
		require.NoError(t, rx.c.feed(b))
	}
	requireIntoMsgs(t, rx.msgs, map[uint32]int{1: size, 2: size, 3: 100})
}

// requireIntoMsgs checks that msgs are exactly the intoMsgs of want (Seq
// to size), once each, intact.
func requireIntoMsgs(t *testing.T, msgs []Message, want map[uint32]int) {
	t.Helper()
	got := map[uint32]int{}
	for _, m := range msgs {
		im := m.(*intoMsg)
		got[im.Seq]++
		require.True(t, bytes.Equal(im.Data, segPayload(want[im.Seq], byte(im.Seq))), "message %d's bytes", im.Seq)
		require.Equal(t, im.Seq*3, im.Tail)
	}
	for seq := range want {
		require.Equal(t, 1, got[seq], "deliveries of message %d", seq)
	}
	require.Len(t, got, len(want))
}

// TestReadIntoMixedCuts feeds the same wire cut at many places, as gnet's
// reads may cut it: every message arrives intact, exactly once, whichever
// way the packets are opened.
func TestReadIntoMixedCuts(t *testing.T) {
	const size = 1 << 20
	for _, step := range []int{1000, 4093, 40000, 65539, 100000} {
		tx, rx := mixedEnds(t)
		proof, pkts, _ := mixedWire(t, tx, size)
		require.NoError(t, rx.c.feed(proof))
		wire := bytes.Join(pkts, nil)
		for at := 0; at < len(wire); at += step {
			require.NoError(t, rx.c.feed(wire[at:min(at+step, len(wire))]), "step %d at %d", step, at)
		}
		requireIntoMsgs(t, rx.msgs, map[uint32]int{1: size, 2: size, 3: 100})
	}
}

// TestReadIntoMixedLies: a packet whose commands ahead of a chunk are not
// what a sender writes is not opened; it takes the ordinary path, which
// rejects it once whole, or delivers it if it was valid: a chunk whose
// declared length stops short of the packet's end, commands ahead that
// name the chunk's own slot (a CancelMessage), a malformed command ahead.
func TestReadIntoMixedLies(t *testing.T) {
	const size = 1 << 20
	// packetOf wraps payload in a Data packet header.
	packetOf := func(payload []byte) []byte {
		b := make([]byte, packetHeaderSize, packetHeaderSize+len(payload))
		putPacketHeader(b, packetHeader{typ: packetTypeData, size: len(payload)})
		return append(b, payload...)
	}
	chunk := func(code byte, slot uint32, data []byte) []byte {
		b := append([]byte{code}, serde.AppendCross(nil, uint64(slot))...)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(data)))
		return append(b, data...)
	}
	start := func(t *testing.T) (*wireEnd, uint32) {
		tx, rx := mixedEnds(t)
		tx.send(newIntoMsg(1, size), 0)
		require.NoError(t, rx.c.feed(tx.output(packetHeaderSize+maxPacketPayload)))
		tx.send(newIntoMsg(2, size), 0)
		for _, b := range tx.packets(2) {
			require.NoError(t, rx.c.feed(b))
		}
		var slot uint32
		for i, s := range rx.r.slots {
			if s != nil {
				slot = uint32(i)
			}
		}
		require.Equal(t, rBody, rx.r.slot(slot).phase)
		require.NotEmpty(t, rx.r.slot(slot).dec.ValueSpace(), "the value is lent")
		return rx, slot
	}
	data := bytes.Repeat([]byte{7}, 1000)
	var opened int
	testHookMixedOpen = func(int) { opened++ }
	t.Cleanup(func() { testHookMixedOpen = nil })

	t.Run("chunk short of the packet's end", func(t *testing.T) {
		rx, slot := start(t)
		opened = 0
		// Update, then a chunk of 1000 bytes, then 10 more Updates.
		pkt := packetOf(append(append([]byte{cmdUpdate}, chunk(cmdMessage, slot, data)...), bytes.Repeat([]byte{cmdUpdate}, 10)...))
		before := rx.r.slot(slot).bytes
		require.NoError(t, rx.c.feed(pkt[:500]))
		require.Zero(t, opened)
		require.NoError(t, rx.c.feed(pkt[500:]))
		require.Zero(t, opened)
		require.Equal(t, before+len(data), rx.r.slot(slot).bytes, "the chunk, the ordinary way")
	})
	t.Run("cancel of the chunk's slot ahead", func(t *testing.T) {
		rx, slot := start(t)
		opened = 0
		pkt := packetOf(append(appendCancelMessage(nil, slot), chunk(cmdMessage, slot, data)...))
		require.NoError(t, rx.c.feed(pkt[:500]))
		require.Zero(t, opened)
		err := rx.c.feed(pkt[500:])
		require.ErrorIs(t, err, ErrBadSlot, "a continuation on the canceled slot")
	})
	t.Run("malformed command ahead", func(t *testing.T) {
		rx, slot := start(t)
		opened = 0
		pkt := packetOf(append([]byte{0x7e}, chunk(cmdMessage, slot, data)...))
		require.NoError(t, rx.c.feed(pkt[:500]))
		require.Zero(t, opened)
		require.ErrorIs(t, rx.c.feed(pkt[500:]), ErrBadCommand)
	})
}
