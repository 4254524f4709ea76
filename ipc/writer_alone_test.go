package ipc

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// packetChunks returns the slots of the chunks in packet pkt, whose
// payload holds chunks only (no commands).
func packetChunks(t *testing.T, pkt []byte) []uint32 {
	t.Helper()
	h, err := parsePacketHeader(pkt, maxPacketPayload)
	require.NoError(t, err)
	p := pkt[packetHeaderSize:]
	require.Equal(t, h.size, len(p))
	var slots []uint32
	for len(p) > 0 {
		require.Contains(t, []uint8{cmdNewMessage, cmdMessage, cmdEndMessage}, p[0], "a chunk")
		slot, m, err := serde.ParseCross(p[1:])
		require.NoError(t, err)
		l := int(binary.LittleEndian.Uint16(p[1+m:]))
		slots = append(slots, uint32(slot))
		p = p[1+m+2+l:]
	}
	return slots
}

// aloneHarness is the chunk-alone tests' writer and reader, joined by
// hand: a writer with a size-byte large message queued (large), a
// reader whose events collect the messages it completes, and a packet
// buffer.
func aloneHarness(t *testing.T, size int) (w *writer, r *reader, ev *pipeEvents, buf []byte, large *msgStub) {
	t.Helper()
	cfg := testConfig(t, nil)
	w = newWriter(cfg)
	w.peerHello()
	ev = &pipeEvents{t: t}
	r = newReader(cfg, ev)
	large = &msgStub{msg: testmsg.New(1, size), ti: testTI, state: OnPeer}
	require.True(t, w.enqueue(large))
	return w, r, ev, make([]byte, largePacketSize), large
}

// fillFeed has w fill one packet into buf and r read it whole, and
// returns the message slots of the packet's chunks.
func fillFeed(t *testing.T, w *writer, r *reader, buf []byte) []uint32 {
	t.Helper()
	n, err := w.fill(buf[:w.packetSize()])
	require.NoError(t, err)
	require.NotZero(t, n)
	used, err := r.feed(buf[:n])
	require.NoError(t, err)
	require.Equal(t, n, used)
	return packetChunks(t, buf[:n])
}

// TestLargeChunkPacketAlone: beside small messages, every packet that
// carries a chunk of a large message's body (past smallMessage bytes) holds
// that chunk only: a small message queued beside it goes in a packet of
// its own, before or after, never with the value's chunk, also when the
// chunk ends short because the value's window credit ran out (grants of
// odd sizes). Small messages queued together still share packets. The
// reader gets every message whole. (On a writer that tops packets up, a
// 1 KiB message queued beside the value shares its BufferSize packet with
// the value's next chunk: the peer's reader cannot open that packet and
// read it straight into the value, readinto.go.)
func TestLargeChunkPacketAlone(t *testing.T) {
	const size = 4 << 20
	w, r, ev, buf, large := aloneHarness(t, size)
	li := large.slot
	fill := func() []uint32 {
		return fillFeed(t, w, r, buf)
	}
	for !w.slots[li].large {
		fill()
	}

	smalls, alone, shared, grants := 0, 0, 0, 0
	for k := 0; w.slots[li].st == large; k++ {
		if w.slots[li].phase == slotBlocked {
			// Odd grants: the value's chunks end short of the packet.
			w.grant(uint64(li), uint64(w.slots[li].unique), 100_003)
			grants++
		}
		// One small message before every other packet, two together
		// before every fifth.
		if k%2 == 0 || k%5 == 0 {
			require.True(t, w.enqueue(&msgStub{msg: testmsg.New(100+smalls, 1000), ti: testTI, state: OnPeer}))
			smalls++
		}
		if k%5 == 0 {
			require.True(t, w.enqueue(&msgStub{msg: testmsg.New(100+smalls, 1000), ti: testTI, state: OnPeer}))
			smalls++
		}
		for w.wq.len() > 0 {
			wasLarge := w.slots[li].large
			slots := fill()
			if wasLarge && slices.Contains(slots, uint32(li)) {
				require.Equal(t, []uint32{uint32(li)}, slots, "packet %d: a large value's chunk alone", k)
				alone++
			}
			if len(slots) > 1 {
				shared++
			}
			if w.wq.len() > 0 && w.slots[w.wq.front()].large && !w.newWaiting() {
				break // the next small messages come before its next packet
			}
		}
	}
	for w.wq.len() > 0 {
		fill()
	}
	require.Greater(t, grants, 2, "chunks cut by the window")
	require.Greater(t, alone, 20)
	require.Greater(t, shared, 0, "small messages queued together share a packet")
	require.Len(t, ev.msgs, 1+smalls)
	k := slices.IndexFunc(ev.msgs, func(m *testmsg.Message) bool { return m.Idx == 1 })
	require.GreaterOrEqual(t, k, 0)
	require.NoError(t, testmsg.Verify(ev.msgs[k], size), "the large message whole")
}

// TestLargeChunkSharesBesideSeveral: the chunk-alone rule is for one
// caller at a time. Once a write finished two small messages beside the
// large one (callers in flight together, noteWrite), a small message and
// the value's next chunk share a packet again, as without the rule; when
// the sending pipe is no longer short the rule is back.
func TestLargeChunkSharesBesideSeveral(t *testing.T) {
	const size = 4 << 20
	w, r, ev, buf, large := aloneHarness(t, size)
	li := large.slot
	fill := func() []uint32 {
		if w.slots[li].phase == slotBlocked {
			w.grant(uint64(li), uint64(w.slots[li].unique), 1<<20)
		}
		return fillFeed(t, w, r, buf)
	}
	for !w.slots[li].large {
		fill()
	}
	smalls := 0
	small := func() {
		require.True(t, w.enqueue(&msgStub{msg: testmsg.New(100+smalls, 1000), ti: testTI, state: OnPeer}))
		smalls++
	}
	// One write, one small message beside the value: its chunk alone.
	w.noteWrite(true)
	small()
	require.NotContains(t, fill(), uint32(li), "one caller: the small message in a packet of its own")
	require.Equal(t, []uint32{uint32(li)}, fill(), "one caller: a large value's chunk alone")
	w.noteWrite(true)

	// One write finishes two small messages beside it: several callers.
	small()
	small()
	fill()
	w.noteWrite(true)
	require.Equal(t, 2, w.besideMaxN)
	small()
	slots := fill()
	require.Contains(t, slots, uint32(li), "several callers: a small message and the value's chunk share a packet")
	require.NotEqual(t, []uint32{uint32(li)}, slots, "several callers: a small message and the value's chunk share a packet")

	// The pipe is long again: the rule is back.
	w.noteWrite(false)
	small()
	require.NotContains(t, fill(), uint32(li), "pipe not short: the small message in a packet of its own")
	require.Equal(t, []uint32{uint32(li)}, fill(), "pipe not short: a large value's chunk alone")

	for w.slots[li].st == large || w.wq.len() > 0 {
		fill()
	}
	require.Len(t, ev.msgs, 1+smalls)
}

// TestOneCallerSticky: once a feed brought two small messages beside a
// large one, the reader's gate for direct reads (oneCaller) stays shut for
// the rest of the receiving pipe's short spell, also after the grant
// intervals that remembered that feed have passed (besideMax and
// besidePrev back to one): beside sixteen callers a feed with one small
// message now and then must not let a short read in.
func TestOneCallerSticky(t *testing.T) {
	cfg := testConfig(t, nil)
	w := newWriter(cfg)
	ev := &pipeEvents{t: t}
	r := newReader(cfg, ev)
	r.beside = true
	buf := make([]byte, 4*largePacketSize)

	large := &msgStub{msg: testmsg.New(1, 4<<20), ti: testTI, state: OnPeer}
	require.True(t, w.enqueue(large))
	feed := func(packets int) {
		n := 0
		for range packets {
			k, err := w.fill(buf[n : n+w.packetSize()])
			require.NoError(t, err)
			n += k
		}
		used, err := r.feed(buf[:n])
		require.NoError(t, err)
		require.Equal(t, n, used)
	}
	for r.large == 0 {
		feed(1)
	}
	small := func() {
		require.True(t, w.enqueue(&msgStub{msg: testmsg.New(100, 1000), ti: testTI, state: OnPeer}))
	}
	small()
	feed(1)
	require.True(t, r.oneCaller(), "one small message in a feed: one caller")
	small()
	small()
	feed(1)
	require.Equal(t, 2, r.besideMax)
	require.False(t, r.oneCaller(), "two small messages in a feed: several callers")
	// Two grant intervals pass with one small message a feed (window.go
	// rotates besideMax into besidePrev at each grant).
	r.besidePrev, r.besideMax = 1, 1
	small()
	feed(1)
	require.Equal(t, 1, r.besideShareN())
	require.False(t, r.oneCaller(), "several callers until the short spell ends")
}
