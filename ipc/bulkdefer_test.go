package ipc

import (
	"bytes"
	"testing"

	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// deferEnds returns a sending and a receiving socket-free end for intoMsg
// (wireharness_test.go), the receiver's large values proven by one 1 MiB
// value delivered (so that the next ones are lent their arrays).
func deferEnds(t *testing.T) (tx, rx *wireEnd) {
	t.Helper()
	p := NewProtocol()
	require.NoError(t, Register(p, 1, func(Context, *intoMsg) {}))
	cfg, err := Config{Protocol: p, Limits: serde.Limits{MaxString: 256 << 20}}.withDefaults()
	require.NoError(t, err)
	tx, rx = newWireEnd(t, &cfg), newWireEnd(t, &cfg)
	rx.c.r = rx.r
	tx.send(newIntoMsg(1, 1<<20), 0)
	rx.input(tx.output(packetHeaderSize + maxPacketPayload))
	require.Len(t, rx.msgs, 1)
	return tx, rx
}

// nextPackets returns the next k packets the writer fills (all it has if
// fewer), each of at most a full packet.
func (e *wireEnd) nextPackets(k int) [][]byte {
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

// busySlot returns the receiving slot of the one message under way.
func (e *wireEnd) busySlot() (uint32, *rslot) {
	e.t.Helper()
	for i, s := range e.r.slots {
		if s != nil {
			return uint32(i), s
		}
	}
	e.t.Fatal("no message under way")
	return 0, nil
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

// TestDeferredValueBytes: one feed holds two packets of a large value's
// chunks and then a small message. The small message is dispatched, and
// the output it produced is written (the flush hook), before the value's
// bytes ahead of it are copied into the value; once the feed returns they
// are in place, and every message arrives intact, exactly once.
func TestDeferredValueBytes(t *testing.T) {
	const size = 1 << 20
	tx, rx := deferEnds(t)
	tx.send(newIntoMsg(2, size), 0)
	first := tx.nextPackets(1) // the header and the first chunk
	rx.input(first[0])
	_, big := rx.busySlot()
	room := len(big.dec.ValueSpace())
	require.NotZero(t, room, "the value is lent its array")

	ahead := tx.nextPackets(2)
	tx.send(newIntoMsg(3, 100), 0)
	feed := append(bytes.Join(ahead, nil), tx.nextPackets(1)[0]...)
	var flushes []string
	rx.r.flush = func() bool {
		flushes = append(flushes, "flush")
		require.Len(t, rx.msgs, 2, "the small message, dispatched before the flush")
		require.Equal(t, uint32(3), rx.msgs[1].(*intoMsg).Seq)
		require.Len(t, big.dec.ValueSpace(), room, "no byte of the value ahead copied yet")
		return true
	}
	rx.input(feed)
	require.NotEmpty(t, flushes, "the small message's output written before the value's bytes were copied")
	require.Less(t, len(big.dec.ValueSpace()), room-2*maxChunkData+1, "the value's bytes in place after the feed")
	require.Zero(t, rx.r.def.n)
	require.Nil(t, rx.r.def.s)

	rx.r.flush = nil
	rx.input(tx.output(packetHeaderSize + maxPacketPayload))
	requireIntoMsgs(t, rx.msgs, map[uint32]int{1: 1 << 20, 2: size, 3: 100})
}

// TestDeferredValueCuts feeds a large value with small messages between its
// packets through conn.feed, cut at many places as gnet's reads cut it:
// every message arrives intact, exactly once, and no noted byte outlives a
// feed.
func TestDeferredValueCuts(t *testing.T) {
	const size = 1 << 20
	for _, step := range []int{1000, 4093, 40000, 65539, 100000, 300000} {
		tx, rx := deferEnds(t)
		tx.send(newIntoMsg(2, size), 0)
		var wire []byte
		for seq := uint32(3); tx.w.hasOutput(); seq++ {
			for _, p := range tx.nextPackets(3) {
				wire = append(wire, p...)
			}
			if seq < 10 {
				tx.send(newIntoMsg(seq, int(seq)*50), 0)
			}
		}
		tx.output(packetHeaderSize + maxPacketPayload) // completions
		want := map[uint32]int{1: 1 << 20, 2: size}
		for seq := uint32(3); seq < 10; seq++ {
			want[seq] = int(seq) * 50
		}
		for at := 0; at < len(wire); at += step {
			require.NoError(t, rx.c.feed(wire[at:min(at+step, len(wire))]), "step %d at %d", step, at)
			require.Nil(t, rx.r.def.s, "bytes noted after a feed")
		}
		requireIntoMsgs(t, rx.msgs, want)
	}
}

// TestDeferredValueCanceled: a CancelMessage for a value whose bytes the
// same feed noted drops them with the message; a small message after the
// noted bytes is dispatched, and the next value on the connection arrives
// intact.
func TestDeferredValueCanceled(t *testing.T) {
	const size = 1 << 20
	tx, rx := deferEnds(t)
	tx.send(newIntoMsg(2, size), 0)
	rx.input(tx.nextPackets(1)[0])
	slot, _ := rx.busySlot()
	feed := bytes.Join(tx.nextPackets(2), nil)
	cancel := appendCancelMessage([]byte{0, 0, 0, 0}, slot)
	putPacketHeader(cancel, packetHeader{typ: packetTypeData, size: len(cancel) - packetHeaderSize})
	feed = append(feed, cancel...)
	tx2, _ := deferEnds(t)
	tx2.send(newIntoMsg(4, 100), 0)
	tx2.send(newIntoMsg(5, size), 0)
	feed = append(feed, tx2.output(packetHeaderSize+maxPacketPayload)...)
	rx.input(feed)
	require.Nil(t, rx.r.def.s)
	requireIntoMsgs(t, rx.msgs, map[uint32]int{1: 1 << 20, 4: 100, 5: size})
}
