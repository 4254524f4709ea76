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

// TestSettleAcks checks when a receiver returns the relay credits it owes
// (writer.settleAcks): at once until the peer has been seen with several
// unreturned at once, then with any packet written anyway or once as many
// are owed as the most seen, never later; a packet that returns them
// starts with AckdCount.
func TestSettleAcks(t *testing.T) {
	w := newWriter(testConfig(t, nil))
	buf := make([]byte, 4<<10)
	settle := func(owed int) (returned int) {
		t.Helper()
		w.owedAcks += owed
		w.settleAcks()
		if !w.hasOutput() {
			return 0
		}
		n, err := w.fill(buf)
		require.NoError(t, err)
		p := buf[packetHeaderSize:n]
		require.Equal(t, byte(cmdAckdCount), p[0], "AckdCount starts the packet")
		return int(p[1])
	}

	require.Equal(t, 1, settle(1), "the first credit goes at once")
	require.Equal(t, 1, settle(1))
	require.Equal(t, 3, settle(3), "three owed at once: the peer lent at least three")
	require.Equal(t, 3, w.ackBatch)
	require.Zero(t, settle(1), "fewer than the peer has shown to hold: they wait")
	require.Zero(t, settle(1))
	require.Equal(t, 3, settle(1), "as many as the peer has shown: they go")

	// Owed credits ride on a packet written anyway (a Window grant here).
	require.Zero(t, settle(2))
	w.windows = append(w.windows, windowGrant{slot: 1, unique: 1, credit: 64 << 10})
	require.Equal(t, 2, settle(0))
	require.Empty(t, w.windows, "the grant went in the same packet")

	// Owed across reads, more than seen before: the batch grows with them.
	require.Zero(t, settle(2))
	require.Equal(t, 5, settle(3))
	require.Equal(t, 5, w.ackBatch)
	require.Zero(t, w.owedAcks)
}
