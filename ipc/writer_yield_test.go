package ipc

import (
	"testing"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/stretchr/testify/require"
)

// sendingEvents is pipeEvents for a connection whose writer may have a
// large message under way (largeSender).
type sendingEvents struct {
	*pipeEvents
	large bool
}

func (e *sendingEvents) sendingLarge() bool { return e.large }

// TestReaderYieldsBesideLargeSend checks that the reader gives up its P
// once after a feed that dispatched a message while its connection's writer has a large message
// under way, so that a caller woken by a completion runs before the loop
// writes the next bulk batch (writer.go, sendingLarge), without flushing
// the output first; and that it never yields for small messages alone.
func TestReaderYieldsBesideLargeSend(t *testing.T) {
	cfg := testConfig(t, nil)
	w := newWriter(cfg)
	ev := &sendingEvents{pipeEvents: &pipeEvents{t: t}}
	r := newReader(cfg, ev)
	yields, flushes := 0, 0
	r.yield = func() { yields++ }
	r.flush = func() bool { flushes++; return true }
	pkt := make([]byte, cfg.BufferSize)
	// send feeds n small messages in one input.
	send := func(first, n int) {
		t.Helper()
		for i := range n {
			require.True(t, w.enqueue(&msgStub{msg: testmsg.New(first+i, 1000), ti: testTI, state: OnPeer}))
		}
		var in []byte
		for {
			k, err := w.fill(pkt)
			require.NoError(t, err)
			if k == 0 {
				break
			}
			in = append(in, pkt[:k]...)
		}
		used, err := r.feed(in)
		require.NoError(t, err)
		require.Equal(t, len(in), used)
	}

	send(0, 10)
	require.Len(t, ev.msgs, 10)
	require.Zero(t, yields, "small messages, nothing large being sent")

	ev.large = true
	send(10, 10)
	require.Len(t, ev.msgs, 20)
	require.Equal(t, 1, yields, "one yield per feed that dispatched, beside a large send")
	require.Zero(t, flushes, "the pump after the feed writes the output")

	ev.large = false
	send(20, 10)
	require.Equal(t, 1, yields, "no more yields once the large send is over")

	// An input of nothing but an incomplete packet dispatches nothing.
	ev.large = true
	used, err := r.feed([]byte{packetTypeData, 0})
	require.NoError(t, err)
	require.Zero(t, used)
	require.Equal(t, 1, yields, "no dispatch, no yield")
}

// TestSendingLarge checks that a connection reports a large message under
// way exactly while its writer counts one (largeBodies).
func TestSendingLarge(t *testing.T) {
	cfg := testConfig(t, nil)
	c := &conn{w: newWriter(cfg)}
	require.False(t, c.sendingLarge())
	require.True(t, c.w.enqueue(&msgStub{msg: testmsg.New(1, 1<<20), ti: testTI, state: OnPeer}))
	pkt := make([]byte, cfg.BufferSize)
	for range (smallMessage / cfg.BufferSize) + 2 {
		_, err := c.w.fill(pkt)
		require.NoError(t, err)
	}
	require.True(t, c.sendingLarge(), "more than smallMessage bytes of a 1 MiB message written")
	for {
		k, err := c.w.fill(pkt)
		require.NoError(t, err)
		if k == 0 {
			break
		}
	}
	require.False(t, c.sendingLarge(), "the message finished")
}
