package ipc

import (
	"testing"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/stretchr/testify/require"
)

// TestPacketSizeAfterHello checks the writer's packet size without
// sockets: BufferSize until the peer's hello, then 64 KiB (or WriteBatch,
// if smaller) for the packets that continue a large message, when
// BufferSize was left at zero; a BufferSize set by the user holds with
// every peer. A 64 KiB packet carries 64 KiB of a large message, which a
// default reader decodes.
func TestPacketSizeAfterHello(t *testing.T) {
	for _, tc := range []struct {
		name        string
		buffer      int
		batch       int
		before, aft int
	}{
		{"default", 0, 0, DefaultBufferSize, largePacketSize},
		{"small_batch", 0, 16 << 10, DefaultBufferSize, 16 << 10},
		{"buffer_set", 8 << 10, 0, 8 << 10, 8 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, func(c *Config) { c.BufferSize, c.WriteBatch = tc.buffer, tc.batch })
			w := newWriter(cfg)
			const size = 200 << 10
			require.True(t, w.enqueue(&msgStub{msg: testmsg.New(7, size), ti: testTI, state: OnPeer}))
			require.Equal(t, tc.before, w.packetSize(), "before the hello")
			w.peerHello()
			require.Equal(t, tc.before, w.packetSize(), "a message not started yet")

			ev := &pipeEvents{t: t}
			r := newReader(cfg, ev)
			buf := make([]byte, tc.aft)
			for len(ev.msgs) == 0 {
				size := w.packetSize()
				if w.slots[w.wq.front()].bytes > smallMessage {
					require.Equal(t, tc.aft, size, "a large message under way")
				} else {
					require.Equal(t, tc.before, size, "its first 16 KiB")
				}
				n, err := w.fill(buf[:size])
				require.NoError(t, err)
				require.NotZero(t, n)
				if w.wq.len() > 0 {
					require.Equal(t, size, n, "a large message fills its packets")
				}
				if n == largePacketSize {
					// docs/protocol.md §7b: Data, no flags, payload 65532.
					require.Equal(t, []byte{0x01, 0x00, 0xfc, 0xff}, buf[:packetHeaderSize])
				}
				used, err := r.feed(buf[:n])
				require.NoError(t, err)
				require.Equal(t, n, used)
			}
			require.Equal(t, testmsg.New(7, size), ev.msgs[0])
		})
	}
}

// TestPacketSizeRelayBound: after the hello, a relay-bound message follows
// the same rule as a direct one: BufferSize packets until it has written
// more than smallMessage bytes, large packets after that (a relay copies
// each chunk into its message's own buffers and bounds a source by bytes,
// RelayConfig.SourceBytes, so a large packet costs it no more than the
// same bytes in small ones), each packet taking one relay credit.
func TestPacketSizeRelayBound(t *testing.T) {
	cfg := testConfig(t, nil)
	w := newWriter(cfg)
	w.peerHello()
	buf := make([]byte, largePacketSize)

	relayBound := &msgStub{msg: testmsg.New(1, 300<<10), ti: testTI, state: OnPeer, url: "b", credit: true}
	require.True(t, w.enqueue(relayBound))
	var sizes []int
	for w.wq.len() > 0 {
		size := w.packetSize()
		n, err := w.fill(buf[:size])
		require.NoError(t, err)
		require.NotZero(t, n)
		require.LessOrEqual(t, n, size)
		sizes = append(sizes, n)
		w.credits++ // the relay returns every credit at once
	}
	require.LessOrEqual(t, sizes[0], cfg.BufferSize, "its first packet")
	require.Contains(t, sizes, largePacketSize, "packets once it is large: %v", sizes)
}

// TestPacketSizeSmallMessages: after the hello, small messages keep
// sharing BufferSize packets, and one queued beside a large message under
// way starts in a BufferSize packet.
func TestPacketSizeSmallMessages(t *testing.T) {
	cfg := testConfig(t, nil)
	w := newWriter(cfg)
	w.peerHello()
	for i := range 40 {
		require.True(t, w.enqueue(&msgStub{msg: testmsg.New(i, 1000), ti: testTI, state: OnPeer}))
	}
	buf := make([]byte, largePacketSize)
	for w.wq.len() > 0 {
		size := w.packetSize()
		require.Equal(t, cfg.BufferSize, size)
		n, err := w.fill(buf[:size])
		require.NoError(t, err)
		require.NotZero(t, n)
	}
	require.Len(t, w.done, 40)

	require.True(t, w.enqueue(&msgStub{msg: testmsg.New(50, 1<<20), ti: testTI, state: OnPeer}))
	for w.slots[w.wq.front()].bytes <= smallMessage {
		require.Equal(t, cfg.BufferSize, w.packetSize(), "its first 16 KiB")
		_, err := w.fill(buf[:w.packetSize()])
		require.NoError(t, err)
	}
	require.Equal(t, largePacketSize, w.packetSize(), "the large message under way")
	require.True(t, w.enqueue(&msgStub{msg: testmsg.New(51, 100), ti: testTI, state: OnPeer}))
	require.Equal(t, cfg.BufferSize, w.packetSize(), "the small message goes first, in a small packet")
}

// TestPacketSizeBesideSmallMessages: to a peer with windows a large
// message keeps its large packets while small messages pass beside it
// (its window bounds what it has in flight, window.go): a small message
// queued beside it goes first, in a BufferSize packet, and the large one
// goes on in large packets after it.
func TestPacketSizeBesideSmallMessages(t *testing.T) {
	cfg := testConfig(t, nil)
	w := newWriter(cfg)
	w.peerHello()
	buf := make([]byte, largePacketSize)
	require.True(t, w.enqueue(&msgStub{msg: testmsg.New(1, 1<<20), ti: testTI, state: OnPeer}))
	for w.slots[w.wq.front()].bytes <= smallMessage {
		_, err := w.fill(buf[:w.packetSize()])
		require.NoError(t, err)
	}
	require.Equal(t, largePacketSize, w.packetSize())
	for i := range 3 {
		require.True(t, w.enqueue(&msgStub{msg: testmsg.New(10+i, 1000), ti: testTI, state: OnPeer}))
		require.Equal(t, cfg.BufferSize, w.packetSize(), "the small message first, in a small packet")
		_, err := w.fill(buf[:w.packetSize()])
		require.NoError(t, err)
		require.Len(t, w.done, i+1, "the small message went whole")
		require.Equal(t, largePacketSize, w.packetSize(), "the large message goes on in large packets")
		_, err = w.fill(buf[:w.packetSize()])
		require.NoError(t, err)
	}
}
