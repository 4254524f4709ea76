package ipc

import (
	"testing"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/stretchr/testify/require"
)

// TestWriterRelayCredits checks the sender's side of relay credits without
// sockets: a packet carrying a relay-bound chunk takes a credit and is
// flagged AckRequest; with none left, relay-bound messages wait while a
// direct message goes on; AckdCount returns credits; a returned credit
// starts the next packet's commands.
func TestWriterRelayCredits(t *testing.T) {
	cfg := testConfig(t, func(c *Config) { c.RelayCredits = 1 })
	w := newWriter(cfg)
	relayBound := &msgStub{msg: testmsg.New(1, 100), ti: testTI, state: OnPeer, url: "b", credit: true}
	direct := &msgStub{msg: testmsg.New(2, 100), ti: testTI, state: OnPeer}
	buf := make([]byte, cfg.BufferSize)
	fill := func() (packetHeader, []byte) {
		t.Helper()
		n, err := w.fill(buf)
		require.NoError(t, err)
		if n == 0 {
			return packetHeader{}, nil
		}
		h, err := parsePacketHeader(buf, maxPacketPayload)
		require.NoError(t, err)
		return h, buf[packetHeaderSize:n]
	}

	require.True(t, w.enqueue(relayBound))
	h, _ := fill()
	require.Equal(t, uint8(packetFlagAckRequest), h.flags&packetFlagAckRequest, "relay-bound packet flagged")
	require.Zero(t, w.credits)

	// No credit: a second relay-bound message waits, a direct one is sent.
	relay2 := &msgStub{msg: testmsg.New(3, 100), ti: testTI, state: OnPeer, url: "b", credit: true}
	require.True(t, w.enqueue(relay2))
	require.True(t, w.enqueue(direct))
	h, p := fill()
	require.NotNil(t, p)
	require.Zero(t, h.flags&packetFlagAckRequest)
	require.Equal(t, 1, w.wq.len(), "only the relay-bound message is left")
	_, p = fill()
	require.Nil(t, p, "nothing to send without a credit")
	require.Zero(t, w.credits)

	// The relay returns the credit; the message goes.
	c := &conn{w: w}
	require.NoError(t, c.ackdCount(1))
	h, _ = fill()
	require.NotZero(t, h.flags&packetFlagAckRequest)
	require.ErrorIs(t, c.ackdCount(2), ErrRelayCredits, "more than lent")

	// Credits to return start the packet.
	w.credits, w.acks = 0, 3
	_, p = fill()
	require.Equal(t, []byte{cmdAckdCount, 3}, p)
}
