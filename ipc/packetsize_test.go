package ipc

import (
	"testing"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/stretchr/testify/require"
)

// TestPacketSizeAfterHello checks the writer's packet size without
// sockets: BufferSize until the peer's hello, then 64 KiB (or WriteBatch,
// if smaller) when BufferSize was left at zero; a BufferSize set by the
// user holds with every peer. A 64 KiB packet carries 64 KiB of a large
// message, which a default reader decodes.
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
			require.Equal(t, tc.before, w.packetSize())
			w.peerHello()
			require.Equal(t, tc.aft, w.packetSize())

			const size = 200 << 10
			require.True(t, w.enqueue(&msgStub{msg: testmsg.New(7, size), ti: testTI, state: OnPeer}))
			ev := &pipeEvents{t: t}
			r := newReader(cfg, ev)
			buf := make([]byte, w.packetSize())
			for len(ev.msgs) == 0 {
				n, err := w.fill(buf)
				require.NoError(t, err)
				require.NotZero(t, n)
				require.LessOrEqual(t, n, tc.aft)
				if w.wq.len() > 0 {
					require.Equal(t, tc.aft, n, "a large message fills its packets")
				}
				used, err := r.feed(buf[:n])
				require.NoError(t, err)
				require.Equal(t, n, used)
			}
			require.Equal(t, testmsg.New(7, size), ev.msgs[0])
		})
	}
}

// TestPacketSizeRelayBound: after the hello, a packet that carries a
// relay-bound chunk keeps to BufferSize (a relay holds a source's packets),
// while a direct message beside it uses the large packet.
func TestPacketSizeRelayBound(t *testing.T) {
	cfg := testConfig(t, nil)
	w := newWriter(cfg)
	w.peerHello()
	buf := make([]byte, w.packetSize())
	require.Len(t, buf, largePacketSize)

	relayBound := &msgStub{msg: testmsg.New(1, 100<<10), ti: testTI, state: OnPeer, url: "b", credit: true}
	require.True(t, w.enqueue(relayBound))
	for w.wq.len() > 0 {
		n, err := w.fill(buf)
		require.NoError(t, err)
		require.NotZero(t, n)
		require.LessOrEqual(t, n, cfg.BufferSize)
		w.credits++ // the relay returns every credit at once
	}

	direct := &msgStub{msg: testmsg.New(2, 100<<10), ti: testTI, state: OnPeer}
	require.True(t, w.enqueue(direct))
	n, err := w.fill(buf)
	require.NoError(t, err)
	require.Equal(t, largePacketSize, n)
}
